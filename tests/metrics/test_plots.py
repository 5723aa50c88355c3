"""Evaluation plots are PNG files drawn from aggregates; a plot name must be a file name."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeboost.metrics import plots
from lakeboost.metrics.base import EvaluationError
from lakeboost.metrics.binary import binary_curve
from lakeboost.metrics.calibration import calibration_summary
from pyspark.sql import DataFrame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




def assert_png(path: str) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000, path


def test_plots_write_png_files(scored: DataFrame, tmp_path: Path) -> None:
    out = str(tmp_path / "plots")
    curve = binary_curve(scored, bins=100)
    metrics = {"tp": 10, "fp": 3, "fn": 4, "tn": 83, "threshold": 0.42}
    paths = [
        *plots.plot_roc_pr(curve, out),
        plots.plot_calibration({"raw": calibration_summary(scored, bins=10)}, out),
        plots.plot_confusion(metrics, out),
        plots.plot_feature_importance({f"f{i}": float(i) for i in range(40)}, out, top=25),
        plots.plot_feature_importance({}, str(tmp_path / "empty")),
        plots.plot_series([0.71, 0.69, 0.75, 0.74, 0.78], out, name="valid_aucpr", title="tuning"),
    ]
    assert [Path(p).name for p in paths] == ["roc.png", "pr.png", "calibration.png", "confusion.png",
                                             "feature_importance.png", "feature_importance.png", "valid_aucpr.png"]
    for p in paths:
        assert_png(p)


def test_plot_series_rejects_a_name_that_is_not_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="becomes the file name"):
        plots.plot_series([1.0], str(tmp_path), name="../x", title="t")
