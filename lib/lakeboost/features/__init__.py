"""lakeboost.features."""
