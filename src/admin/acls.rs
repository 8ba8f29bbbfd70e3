//! ACLs: describe, create, delete.
