"""The maintain step (lakeboost.maintain.step) over lakeboost.io.maintenance."""
