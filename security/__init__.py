"""The security suite (make security): abuse cases replayed against a live messenger it starts itself."""
