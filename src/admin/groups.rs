//! Consumer groups: list, describe, delete, offsets, remove members.
