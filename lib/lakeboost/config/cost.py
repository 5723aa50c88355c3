"""Prices for the cost report of every run."""

from __future__ import annotations

from lakeboost.config.base import Frozen


class CostConfig(Frozen):
    core_hour: float = 0.05  # price of one core for an hour
    gb_hour: float = 0.006  # price of one GB of executor memory for an hour
    currency: str = "USD"
