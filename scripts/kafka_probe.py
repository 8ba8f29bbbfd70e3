#!/usr/bin/env python3
"""Readiness probe for a Kafka broker, speaking the Kafka wire protocol directly.

Used by scripts/kafka-local.sh to decide when a locally started broker is ready.
Python 3 standard library only.

What it does, repeatedly until it succeeds or the deadline passes:
  1. opens a TCP connection to HOST:PORT,
  2. sends ApiVersions v0 (every broker version answers v0) and reads the
     Metadata (api key 3) version range the broker supports,
  3. picks a Metadata version from the broker's advertised range: the highest
     non-flexible one in 1..8 (Kafka 3.9.x advertises Metadata v0..v12 and
     4.3/4.4 advertise v0..v13 -- KIP-896 did not remove old Metadata
     versions -- so both end up on v8); if a future broker offers none of
     1..8, the flexible encoding (v9..v13) is used instead,
  4. sends a Metadata request for no topics and parses the broker list,
  5. succeeds when the list has at least --min-brokers entries (and, with
     --require-node, contains that node id).

Exit codes: 0 ready, 1 timed out, 2 the process given with --pid died,
3 usage error.

Examples:
  kafka_probe.py 127.0.0.1:9092
  kafka_probe.py 127.0.0.1:19092 --min-brokers 3 --timeout 90
  kafka_probe.py 127.0.0.1:29092 --require-node 2 --pid 12345
"""

import argparse
import os
import socket
import struct
import sys
import time

API_METADATA = 3
API_VERSIONS = 18
CLIENT_ID = b"ferrokafka-probe"

# Highest Metadata version this probe encodes in the classic (non-flexible) format.
MAX_CLASSIC_METADATA = 8
# Metadata v9+ uses the flexible format (compact strings/arrays, tagged fields).
FIRST_FLEXIBLE_METADATA = 9
# Highest flexible version whose request layout this probe knows (v13 = Kafka 3.9/4.x).
MAX_FLEXIBLE_METADATA = 13


class ProbeError(Exception):
    """A single probe attempt failed; the caller retries until the deadline."""


# --------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------

def uvarint(value):
    """Unsigned varint as used by the flexible Kafka encodings."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def request_header(api_key, api_version, correlation_id, flexible):
    """Request header v1 (classic) or v2 (flexible: v1 plus an empty tag buffer)."""
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(CLIENT_ID))
    header += CLIENT_ID  # client_id stays a classic nullable string even in v2
    if flexible:
        header += uvarint(0)  # no tagged fields
    return header


def metadata_request_body(version):
    """Metadata request asking for no topics (we only want the broker list)."""
    if version < FIRST_FLEXIBLE_METADATA:
        # v1+: an empty (not null) topic array means "no topics".
        body = struct.pack(">i", 0)
        if version >= 4:
            body += b"\x00"  # allow_auto_topic_creation = false
        if version >= 8:
            body += b"\x00\x00"  # include cluster / topic authorized operations = false
        return body
    # Flexible: compact array of length 0 is encoded as uvarint(0 + 1).
    body = uvarint(1)
    body += b"\x00"  # allow_auto_topic_creation = false
    if version <= 10:
        body += b"\x00"  # include_cluster_authorized_operations (removed in v11)
    body += b"\x00"  # include_topic_authorized_operations
    body += uvarint(0)  # tagged fields
    return body


# --------------------------------------------------------------------------
# Decoding helpers
# --------------------------------------------------------------------------

class Reader:
    """Cursor over a response body."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ProbeError("truncated response")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int16(self):
        return struct.unpack(">h", self.take(2))[0]

    def int32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        shift = value = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def string(self):
        """Classic nullable string: int16 length, -1 = null."""
        length = self.int16()
        return None if length < 0 else self.take(length).decode("utf-8", "replace")

    def compact_string(self):
        """Compact nullable string: uvarint(length + 1), 0 = null."""
        length = self.uvarint() - 1
        return None if length < 0 else self.take(length).decode("utf-8", "replace")

    def skip_tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())  # size + data


def parse_api_versions_v0(body):
    """ApiVersions v0 response -> {api_key: (min_version, max_version)}."""
    reader = Reader(body)
    error = reader.int16()
    count = reader.int32()
    ranges = {}
    for _ in range(max(count, 0)):
        key, lo, hi = reader.int16(), reader.int16(), reader.int16()
        ranges[key] = (lo, hi)
    # Error 35 (UNSUPPORTED_VERSION) still carries the ranges; anything else is fatal.
    if error not in (0, 35) or not ranges:
        raise ProbeError("ApiVersions failed with error code %d" % error)
    return ranges


def parse_metadata_brokers(body, version):
    """Metadata response -> (brokers [(node_id, host, port)], cluster_id, controller_id).

    Only the fields in front of the topic array are read.
    """
    reader = Reader(body)
    flexible = version >= FIRST_FLEXIBLE_METADATA
    if flexible:
        reader.skip_tagged_fields()  # response header v1 tag buffer
    if version >= 3:
        reader.int32()  # throttle_time_ms
    count = reader.uvarint() - 1 if flexible else reader.int32()
    brokers = []
    for _ in range(max(count, 0)):
        node_id = reader.int32()
        host = reader.compact_string() if flexible else reader.string()
        port = reader.int32()
        if version >= 1:
            _rack = reader.compact_string() if flexible else reader.string()
        if flexible:
            reader.skip_tagged_fields()
        brokers.append((node_id, host, port))
    cluster_id = None
    if version >= 2:
        cluster_id = reader.compact_string() if flexible else reader.string()
    controller_id = reader.int32() if version >= 1 else -1
    return brokers, cluster_id, controller_id


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------

def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProbeError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def round_trip(sock, api_key, version, correlation_id, body, flexible=False):
    """Send one request and return the response body after the correlation id."""
    payload = request_header(api_key, version, correlation_id, flexible) + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    response = recv_exact(sock, size)
    got = struct.unpack(">i", response[:4])[0]
    if got != correlation_id:
        raise ProbeError("correlation id mismatch (%d != %d)" % (got, correlation_id))
    return response[4:]


def choose_metadata_version(supported, forced):
    lo, hi = supported
    if forced is not None:
        if not lo <= forced <= hi:
            raise ProbeError("broker supports Metadata v%d..v%d, not v%d" % (lo, hi, forced))
        return forced
    classic = min(hi, MAX_CLASSIC_METADATA)
    if classic >= max(lo, 1):
        return classic
    flexible = min(hi, MAX_FLEXIBLE_METADATA)
    if flexible >= max(lo, FIRST_FLEXIBLE_METADATA):
        return flexible
    raise ProbeError("no usable Metadata version (broker supports v%d..v%d)" % (lo, hi))


def probe_once(host, port, io_timeout, forced_version):
    """One attempt: returns (metadata_version, brokers, cluster_id, controller_id)."""
    with socket.create_connection((host, port), timeout=io_timeout) as sock:
        sock.settimeout(io_timeout)
        ranges = parse_api_versions_v0(round_trip(sock, API_VERSIONS, 0, 1, b""))
        if API_METADATA not in ranges:
            raise ProbeError("broker does not advertise the Metadata API")
        version = choose_metadata_version(ranges[API_METADATA], forced_version)
        flexible = version >= FIRST_FLEXIBLE_METADATA
        body = round_trip(sock, API_METADATA, version, 2,
                          metadata_request_body(version), flexible)
        brokers, cluster_id, controller_id = parse_metadata_brokers(body, version)
        return version, brokers, cluster_id, controller_id


def process_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def main():
    parser = argparse.ArgumentParser(
        description="Wait until a Kafka broker answers Metadata with enough brokers.")
    parser.add_argument("address", help="HOST:PORT of the broker's client listener")
    parser.add_argument("--min-brokers", type=int, default=1,
                        help="required number of brokers in the Metadata response (default 1)")
    parser.add_argument("--require-node", type=int, default=None, metavar="ID",
                        help="also require this node id in the broker list")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="overall deadline in seconds (default 60)")
    parser.add_argument("--interval", type=float, default=0.25,
                        help="pause between attempts in seconds (default 0.25)")
    parser.add_argument("--pid", type=int, default=None,
                        help="give up at once (exit 2) when this process is gone")
    parser.add_argument("--metadata-version", type=int, default=None,
                        help="force a Metadata version instead of choosing one")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args()

    host, sep, port = args.address.rpartition(":")
    if not sep or not host or not port.isdigit():
        parser.print_usage(sys.stderr)
        print("kafka_probe: address must be HOST:PORT", file=sys.stderr)
        return 3

    started = time.monotonic()
    deadline = started + args.timeout
    last_problem = "no attempt made"
    while True:
        if args.pid is not None and not process_alive(args.pid):
            print("kafka_probe: process %d exited while waiting for %s"
                  % (args.pid, args.address), file=sys.stderr)
            return 2
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            version, brokers, cluster_id, controller_id = probe_once(
                host, int(port), min(5.0, max(remaining, 0.5)), args.metadata_version)
            ids = sorted(b[0] for b in brokers)
            if len(brokers) < args.min_brokers:
                last_problem = "Metadata lists %d broker(s) %s, need %d" % (
                    len(brokers), ids, args.min_brokers)
            elif args.require_node is not None and args.require_node not in ids:
                last_problem = "Metadata lists brokers %s, node %d not among them" % (
                    ids, args.require_node)
            else:
                if not args.quiet:
                    listing = ", ".join("%d@%s:%d" % b for b in sorted(brokers))
                    print("%s ready after %.1fs: Metadata v%d, %d broker(s) [%s], "
                          "cluster id %s, controller %d"
                          % (args.address, time.monotonic() - started, version,
                             len(brokers), listing, cluster_id, controller_id))
                return 0
        except (OSError, ProbeError) as err:
            last_problem = "%s: %s" % (type(err).__name__, err)
        time.sleep(min(args.interval, max(deadline - time.monotonic(), 0)))

    print("kafka_probe: %s not ready after %.0fs (last problem: %s)"
          % (args.address, args.timeout, last_problem), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
