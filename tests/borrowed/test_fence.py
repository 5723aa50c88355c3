"""Nothing outside lakeboost/borrowed/ uses py4j, the JVM handles or xgboost.spark's internals."""

from __future__ import annotations

import re
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib" / "lakeboost"
BORROWED = LIB / "borrowed"
# The JVM handles of PySpark objects, py4j itself, and xgboost.spark's modules behind its public
# `xgboost.spark` (core, data, utils...) or an underscored name imported from xgboost. Uses, not
# prose: a docstring saying there is no `_jvm` on Connect, or that a session talks through py4j,
# uses neither.
FENCED = re.compile(r"(\.|[\"'])_(jvm|jsc|jdf|gateway)\b|\bpy4j\.|import py4j|xgboost\.spark\.\w+|xgboost_spark_core"
                    r"|from xgboost[\w.]* import [^\n]*\b_\w+|from xgboost\.spark import [^\n]*\bdata\b")


def fenced_uses(text: str) -> list[str]:
    """The lines of `text` that use a fenced internal."""
    return [line.strip() for line in text.splitlines() if FENCED.search(line)]


def test_the_pattern_finds_each_kind_of_fenced_use() -> None:
    planted = ("jvm = spark.sparkContext._jvm\nsc._jsc.sc()\ndf._jdf\nsc._gateway.new_array\nimport py4j\n"
               "import xgboost.spark.core as core\nfrom xgboost.spark.data import alias\n"
               "from xgboost.spark import data\nfrom xgboost.spark.core import _SparkXGBEstimator\n"
               "getattr(frame, '_jdf')\nfrom py4j.protocol import Py4JJavaError\n")
    assert len(fenced_uses(planted)) == len(planted.splitlines())
    public = ("from xgboost.spark import SparkXGBClassifier\nimport xgboost\nspark.sparkContext.statusTracker()\n"
              "On Connect there is no `_jvm`, and no py4j gateway.\n")
    assert fenced_uses(public) == []


def test_no_module_outside_borrowed_uses_a_fenced_internal() -> None:
    found = {str(path.relative_to(LIB)): uses for path in sorted(LIB.rglob("*.py"))
             if BORROWED not in path.parents and (uses := fenced_uses(path.read_text()))}
    assert found == {}


def test_the_borrowed_modules_hold_them() -> None:
    assert fenced_uses((BORROWED / "jvm.py").read_text()) and fenced_uses((BORROWED / "xgboost_spark.py").read_text())
