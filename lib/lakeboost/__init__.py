"""lakeboost: multi-source Delta lakehouse to tuned, registered XGBoost models on Spark."""

__version__ = "0.1.0"
