"""lakeboost.ingest."""
