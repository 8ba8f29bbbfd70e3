#!/usr/bin/env python3
"""Find file-level dependency cycles in src/ (issue 12: dependencies point one way).

Usage: scripts/check-layers.py [--edges] [SRC_DIR]    (default SRC_DIR: src/ next to scripts/)

Every src/**/*.rs is one node, named by its module path: src/lib.rs is `crate`,
src/a.rs and src/a/mod.rs are `crate::a`, src/a/b.rs is `crate::a::b`; inline modules
(`mod tests { ... }`, `mod varint { ... }`) belong to the file they are written in.

A file depends on another when it names one of its items:
  * a `use` of `crate::...`, `super::...`, `self::...` or of a child module's name;
  * a path in code starting with `crate::`, `super::`, `self::` or a child module's name
    (`sender::Sender`); `super` counts from the inline module it is written in;
  * comments, strings and the paths of `pub(in crate::x)` visibilities are not read.

A path resolves to the file of the longest module prefix it names. When the next segment
is a name that module imports (`use`, any visibility), the path is followed through that
import to the file that defines the item; so `crate::ClientConfig` is an edge to
src/config.rs, not to src/lib.rs, and `crate::producer::ProducerIdentity` to the file that
defines it whatever `mod.rs` re-exports it.

The rule for re-exports (why a `mod.rs` or `lib.rs` makes no fake cycles):
  * `mod x;` declarations are not edges: a parent that only declares children does not
    depend on them;
  * a `pub` / `pub(crate)` / `pub(super)` `use` is a re-export, not an edge of its own:
    it becomes an edge only when the re-exporting file itself also names the item
    elsewhere (outside `use` items). Users of the re-exported name get the edge to the
    defining file instead;
  * a private `use` is an edge (clippy -D warnings refuses unused imports, and a trait
    imported for its methods is named nowhere else).
So a `mod.rs` that only declares and re-exports is a leaf of the graph; one that also
defines items its children use, and uses its children, is honestly in a cycle.

One module with a clear inside: a private `mod x;` declared in a file that is not a
`mod.rs` / `lib.rs` (`coordinator.rs` declaring `coordinator/kip848.rs`, `fetcher.rs`
its tests) is the inside of that file's module: no other file can name it. Its edges are
still drawn and a cycle between the two is still printed, but as one module, not as a
layer violation, and it does not fail the check: layer cycles are the strongly connected
components of the graph whose nodes are such modules (a file with its private inside).

Prints every strongly connected component of more than one module, with the names that
make each edge, and exits 1 if any of them is not in ALLOWED below (each entry: the exact
set of files, one per module, and the reason, the same reason DESIGN.md gives). Exits 0
otherwise. `--edges` first prints the whole graph.
"""

import os
import re
import sys
from collections import defaultdict

# Cycles kept on purpose: frozenset of files (relative to src/, one per module) -> reason
# (the same as DESIGN.md, "Layers"). Add one only when the cycle is honestly the simpler
# design.
ALLOWED = {
    frozenset({"consumer/mod.rs", "consumer/group/coordinator.rs", "consumer/group/listener.rs"}):
        "the rebalance listener (public, Java's ConsumerRebalanceListener) receives the Consumer "
        "and may call it back; the GroupCoordinator the Consumer owns runs it, and changes the "
        "Consumer's assignment, inside Consumer::poll (as Java's ConsumerCoordinator inside "
        "KafkaConsumer.poll). A trait between them would still have to name the Consumer for "
        "the listener: kept (DESIGN.md, Layers)",
}


def module_path(rel):
    """src-relative file path -> tuple of module segments (without 'crate')."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("lib", "mod"):
        parts = parts[:-1]
    return tuple(parts)


TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
      | (?P<lcomment>//[^\n]*)
      | (?P<bcomment>/\*)
      | (?P<rawstr>b?r(?P<hashes>\#*)")
      | (?P<str>b?"(?:\\.|[^"\\])*")
      | (?P<char>b?'(?:\\.|[^'\\])')
      | (?P<lifetime>'[A-Za-z_][A-Za-z0-9_]*)
      | (?P<ident>r\#[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*)
      | (?P<path>::)
      | (?P<punct>.)""",
    re.VERBOSE | re.DOTALL,
)


def tokenize(text):
    """Identifiers and punctuation, without comments, strings and char literals."""
    out, i, n = [], 0, len(text)
    while i < n:
        m = TOKEN_RE.match(text, i)
        kind = m.lastgroup
        if kind == "bcomment":  # nested block comments
            depth, j = 1, m.end()
            while depth and j < n:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
            continue
        if kind == "rawstr":
            end = text.find('"' + m.group("hashes"), m.end())
            i = n if end < 0 else end + 1 + len(m.group("hashes"))
            continue
        if kind in ("ident", "path", "punct"):
            tok = m.group(0)
            out.append(tok[2:] if tok.startswith("r#") else tok)
        i = m.end()
    return out


def is_ident(tok):
    return tok[0].isalpha() or tok[0] == "_"


class Module:
    def __init__(self, path, file):
        self.path = path
        self.file = file
        self.children = set()
        self.imports = {}  # bound name -> absolute path (tuple)
        self.globs = []  # absolute module paths glob-imported


def parse_use_tree(toks, i, prefix, out):
    """Parse a use tree at toks[i]; append (segments, binding) to out; return next index."""
    segs = list(prefix)
    while i < len(toks):
        t = toks[i]
        if t == "{":
            i += 1
            while toks[i] != "}":
                i = parse_use_tree(toks, i, segs, out)
                if toks[i] == ",":
                    i += 1
            return i + 1
        if t == "*":
            out.append((segs, "*"))
            return i + 1
        if t == "::":
            i += 1
            continue
        if is_ident(t):
            segs.append(t)
            i += 1
            if i < len(toks) and toks[i] == "as":
                out.append((segs, toks[i + 1]))
                return i + 2
            if i >= len(toks) or toks[i] != "::":
                binding = segs[-2] if segs[-1] == "self" else segs[-1]
                out.append((segs, binding))
                return i
            continue
        return i
    return i


class Crate:
    def __init__(self, src):
        self.src = src
        self.modules = {}  # module path -> Module
        self.refs = defaultdict(list)  # file -> [(module path of the reference, segs, name or None)]
        self.reexports = defaultdict(list)  # file -> [(module path, segs, binding)]
        self.idents_outside_use = defaultdict(set)
        self.private_files = set()  # module paths declared by a private `mod x;`
        files = []
        for root, _, names in os.walk(src):
            for name in names:
                if name.endswith(".rs"):
                    files.append(os.path.relpath(os.path.join(root, name), src))
        for rel in sorted(files):
            path = module_path(rel)
            self.modules[path] = Module(path, rel)
        for rel in sorted(files):
            with open(os.path.join(src, rel), encoding="utf-8") as f:
                self.scan(rel, module_path(rel), tokenize(f.read()))
        for path in self.modules:
            if path:
                parent = self.modules.get(path[:-1])
                if parent:
                    parent.children.add(path[-1])

    def absolute(self, mod, segs):
        """Module-relative path -> absolute tuple (without 'crate'), or None if external."""
        segs = list(segs)
        if not segs:
            return None
        head = segs[0]
        if head == "crate":
            return tuple(segs[1:])
        if head in ("self", "super"):
            base = list(mod)
            while segs and segs[0] in ("self", "super"):
                if segs.pop(0) == "super":
                    if not base:
                        return None
                    base.pop()
            return tuple(base + segs)
        if head in self.modules[mod].children or mod + (head,) in self.modules:
            return tuple(mod) + tuple(segs)
        return None

    def scan(self, rel, file_mod, toks):
        stack = []  # (module path, brace depth where it opened)
        depth = 0
        i = 0
        in_use = []
        while i < len(toks):
            t = toks[i]
            mod = stack[-1][0] if stack else file_mod
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if stack and stack[-1][1] == depth:
                    stack.pop()
            elif t == "mod" and i + 2 < len(toks) and is_ident(toks[i + 1]) and toks[i + 2] == "{":
                inner = mod + (toks[i + 1],)
                self.modules.setdefault(inner, Module(inner, rel))
                self.modules[mod].children.add(toks[i + 1])
                stack.append((inner, depth))
                depth += 1
                i += 3
                continue
            elif t == "mod" and i + 2 < len(toks) and is_ident(toks[i + 1]) and toks[i + 2] == ";":
                self.modules[mod].children.add(toks[i + 1])
                if i == 0 or toks[i - 1] not in ("pub", ")"):
                    self.private_files.add(mod + (toks[i + 1],))
            elif t == "in" and i >= 2 and toks[i - 1] == "(" and toks[i - 2] == "pub":
                # pub(in crate::x): a visibility, not a dependency
                while toks[i] != ")":
                    i += 1
                continue
            elif t == "use" and (i == 0 or toks[i - 1] != "::"):
                public = i >= 1 and (toks[i - 1] == "pub" or toks[i - 1] == ")" and "pub" in toks[max(0, i - 5):i])
                start = i
                out = []
                i = parse_use_tree(toks, i + 1, [], out)
                for segs, binding in out:
                    absolute = self.absolute(mod, segs)
                    if absolute is None:
                        continue
                    m = self.modules.setdefault(mod, Module(mod, rel))
                    if binding == "*":
                        m.globs.append(absolute)
                    else:
                        m.imports[binding] = absolute
                    if public:
                        self.reexports[rel].append((mod, absolute, binding))
                    else:
                        self.refs[rel].append((absolute, "::".join(segs)))
                while i < len(toks) and toks[i] != ";":
                    i += 1
                in_use.append((start, i))
                i += 1
                continue
            elif is_ident(t) and (i == 0 or toks[i - 1] != "::") and i + 1 < len(toks) and toks[i + 1] == "::":
                segs = [t]
                j = i + 1
                while j + 1 < len(toks) and toks[j] == "::" and is_ident(toks[j + 1]):
                    segs.append(toks[j + 1])
                    j += 2
                if t in ("crate", "self", "super") or t in self.modules[mod].children or mod + (t,) in self.modules:
                    absolute = self.absolute(mod, segs)
                    if absolute is not None:
                        self.refs[rel].append((absolute, "::".join(segs)))
                i = j
                continue
            if is_ident(t):
                self.idents_outside_use[rel].add(t)
            i += 1
        # a re-exported name the file also uses itself is a dependency of that file
        for mod, absolute, binding in self.reexports[rel]:
            if binding in self.idents_outside_use[rel] and binding != "_":
                self.refs[rel].append((absolute, "pub use crate::" + "::".join(absolute)))

    def owner(self, rel):
        """The file whose module `rel` is the private inside of (`rel` itself if none).

        A private `mod x;` declared in a file that is not a `mod.rs` / `lib.rs` (so its
        file lives in a folder of the declaring file's name: `coordinator.rs` and
        `coordinator/kip848.rs`) is that file's inside: no other file can name it.
        """
        path = module_path(rel)
        while path in self.private_files and path[:-1] in self.modules:
            parent = self.modules[path[:-1]].file
            if parent.endswith(("mod.rs", "lib.rs")):
                break
            path = path[:-1]
        return self.modules[path].file

    def resolve(self, absolute, seen=None):
        """Absolute path -> the file that defines what it names."""
        seen = seen or set()
        if absolute in seen:
            return None
        seen.add(absolute)
        for k in range(len(absolute), -1, -1):
            prefix = absolute[:k]
            if prefix in self.modules:
                mod = self.modules[prefix]
                rest = absolute[k:]
                if rest and rest[0] in mod.imports:
                    found = self.resolve(mod.imports[rest[0]] + rest[1:], seen)
                    if found:
                        return found
                return mod.file
        return None

    def graph(self):
        edges = defaultdict(lambda: defaultdict(set))
        for rel, refs in self.refs.items():
            for absolute, text in refs:
                target = self.resolve(absolute)
                if target and target != rel:
                    edges[rel][target].add(text)
        return edges


def sccs(nodes, edges):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    show_edges = "--edges" in argv
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    crate = Crate(os.path.normpath(src))
    edges = crate.graph()
    files = {m.file for m in crate.modules.values()}
    if show_edges:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{a} -> {b}: {', '.join(sorted(edges[a][b]))}")
    # Layer cycles: over modules, a file and its private inside being one node.
    owner = {f: crate.owner(f) for f in files}
    outer = defaultdict(dict)
    for a in edges:
        for b in edges[a]:
            if owner[a] != owner[b]:
                outer[owner[a]][owner[b]] = True
    cycles = [c for c in sccs(set(owner.values()), outer) if len(c) > 1]
    bad = 0
    for comp in sorted(cycles):
        reason = ALLOWED.get(frozenset(comp))
        status = f"allowed: {reason}" if reason else "NOT ALLOWED"
        print(f"cycle of {len(comp)} modules ({status}):")
        for a in sorted(f for f in files if owner[f] in comp):
            for b in sorted(edges[a]):
                if owner[b] in comp and owner[b] != owner[a]:
                    names = sorted(edges[a][b])
                    more = f" (+{len(names) - 4} more)" if len(names) > 4 else ""
                    print(f"  {a} -> {b}: {', '.join(names[:4])}{more}")
        bad += reason is None
    # Cycles inside one module (a file and its private inside): shown, never failing.
    inside = []
    for o in sorted(set(owner.values())):
        group = {f for f in files if owner[f] == o}
        sub = {a: {b: 1 for b in edges.get(a, {}) if b in group} for a in group}
        inside += [c for c in sccs(group, sub) if len(c) > 1]
    for comp in sorted(inside):
        print(f"inside one module ({owner[comp[0]]} and its private submodules; not a layer cycle):")
        for a in comp:
            for b in sorted(edges[a]):
                if b in comp:
                    print(f"  {a} -> {b}: {', '.join(sorted(edges[a][b])[:4])}")
    for allowed in ALLOWED:
        if sorted(allowed) not in cycles:
            print(f"stale allow-list entry (no such cycle now): {sorted(allowed)}")
    print(f"{len(files)} files, {sum(len(v) for v in edges.values())} edges, "
          f"{len(cycles)} cycles, {bad} not allowed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
