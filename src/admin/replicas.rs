//! Replicas: leader elections, partition reassignments, log dirs.
