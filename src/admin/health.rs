//! Cluster health: under-replicated, under-min-ISR, offline and leaderless partitions.
