"""lakeboost.demo."""
