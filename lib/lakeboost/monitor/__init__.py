"""Monitoring: drift, performance decay, data-quality trend, alerts, reports."""
