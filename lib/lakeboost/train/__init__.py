"""lakeboost.train."""
