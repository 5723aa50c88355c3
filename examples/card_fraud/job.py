"""The demo's config section (`demo:`) and its `generate` step."""

from __future__ import annotations

from dataclasses import asdict

from lakeboost.config.base import Frozen
from lakeboost.config.model import KafkaSourceConfig
from lakeboost.logs import StepSummary
from lakeboost.plugins import register_section
from lakeboost.steps import StepContext, step
from pydantic import Field

from card_fraud.generator import generate_demo_data
from card_fraud.live_kafka import publish_card_events


class DemoConfig(Frozen):
    rows: int = Field(20_000, ge=100, description="transactions to generate")
    seed: int = 42
    days: int = Field(60, ge=7)
    start_date: str = "2026-01-01"
    shift: float = Field(0.0, ge=0.0, description="distribution shift for the live events (drift demo)")


register_section("demo", DemoConfig)


@step("generate")
def generate_step(ctx: StepContext) -> StepSummary:
    """Deterministic demo data into `storage.landing` (idempotent)."""
    demo: DemoConfig = ctx.config.sections.get("demo") or DemoConfig()
    manifest = generate_demo_data(
        ctx.spark, landing_dir=ctx.config.storage.landing, rows=demo.rows, seed=demo.seed,
        days=demo.days, start_date=demo.start_date, shift=demo.shift,
    )
    details = asdict(manifest)
    live = ctx.config.sources.get("card_events")
    if isinstance(live, KafkaSourceConfig):  # --env local+kafka: the live events go through Kafka
        details["card_events_sent_to_kafka"] = publish_card_events(ctx.spark, ctx.config.storage.landing, live)
    return StepSummary("generate", rows_written=manifest.transaction_lines, details=details)
