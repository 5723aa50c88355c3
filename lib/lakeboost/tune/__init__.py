"""lakeboost.tune."""
