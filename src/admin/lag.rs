//! Consumer-group lag, as `kafka-consumer-groups.sh --describe` prints it.
