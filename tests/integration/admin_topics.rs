//! Admin client integration tests (issue 13): topics.
