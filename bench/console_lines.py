"""Count and classify the lines of a captured console output (`make demo > out.log 2>&1`).

    python bench/console_lines.py before.log after.log

Lines are what a file holds between newlines (a tqdm bar's carriage-return updates stay one line,
as on a terminal); each is put in the first class whose pattern it matches.
"""

from __future__ import annotations

import re
import sys

CLASSES: list[tuple[str, re.Pattern[str]]] = [
    ("jar path", re.compile(r"^/\S+\.jar$")),
    ("xgboost round", re.compile(r"\[\d+\]\t[\w-]+-\w+:")),
    ("xgboost.spark info", re.compile(r"booster params:|train_call_kwargs_params|dmatrix_kwargs|Task \d+ got rank|"
                                      r"XGBoost-PySpark")),
    ("third-party progress bar", re.compile(r"Downloading artifacts|it/s\]")),
    ("JSON summary line", re.compile(r"lakeboost\.summary: \{")),
    ("lakeboost progress line", re.compile(r"lakeboost\.progress: ")),
    ("JVM warning or banner", re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN |^WARNING: |Using Spark's default log4j|"
                                         r"^Setting default log level|^To adjust logging level")),
    ("python WARNING line", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ WARNING ")),
    ("INFO log line", re.compile(r"^\d{4}[-/]\d\d[-/]\d\d \d\d:\d\d:\d\d(,\d+)? INFO ")),
]


def classify(path: str) -> None:
    with open(path, errors="replace", newline="") as file:
        lines = file.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    counts: dict[str, int] = {}
    for line in lines:
        name = next((n for n, pattern in CLASSES if pattern.search(line)), "other")
        counts[name] = counts.get(name, 0) + 1
    print(f"{path}: {len(lines)} lines, {sum(len(line) + 1 for line in lines)} bytes, "
          f"longest {max(map(len, lines), default=0)} chars")
    for name, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {count:5d}  {name}")
    print(f"  last line ({len(lines[-1]) if lines else 0} chars): {lines[-1][:160] if lines else ''}")


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        classify(argument)
