"""Metric computations over prediction DataFrames: binary, regression, multiclass, over time, calibration."""
