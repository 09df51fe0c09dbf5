"""Business Central API v2.0 emulator (devstack only)."""
