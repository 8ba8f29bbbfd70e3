//! Transactions and producers: list, describe, abort hanging transactions, fence.
