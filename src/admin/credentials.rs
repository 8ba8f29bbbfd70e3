//! SCRAM credentials, client quotas, delegation tokens.
