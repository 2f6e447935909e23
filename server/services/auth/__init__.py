"""Users, password hashes and API tokens (sync; no HTTP)."""
