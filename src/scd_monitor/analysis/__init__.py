"""What the daemon knows: published views, SLA reports from the store, the state now."""
