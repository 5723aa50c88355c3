"""lakeboost.score."""
