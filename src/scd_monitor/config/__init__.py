"""Configuration: shared config types, durations and the daemon's settings."""
