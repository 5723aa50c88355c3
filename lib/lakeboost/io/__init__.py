"""lakeboost.io."""
