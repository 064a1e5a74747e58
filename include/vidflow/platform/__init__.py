"""Platform-level checks that prove the stack's components work together."""
