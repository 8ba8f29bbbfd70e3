//! Offsets of partitions and record deletion: list_offsets, delete_records.
