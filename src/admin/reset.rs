//! Offset-reset plans, as `kafka-consumer-groups.sh --reset-offsets` computes them.
