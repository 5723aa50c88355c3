"""lakeboost.refine."""
