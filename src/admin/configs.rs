//! Configs: describe and incremental alter.
