"""Progress of a run's units of work: sources and micro-batches, feature tables, tuning trials, monitor windows.

On a terminal, one line at the bottom updates in place (about once a second): the step, the unit
being worked on, how many are done of how many, the elapsed time and, when the count is known, the
time left; and, on a classic session, the Spark stage running and its tasks done. Log lines print
above it (`logs.configure_logging` installs a handler that lifts the line first). Elsewhere (CI,
cron, a file) nothing is redrawn: each finished unit is one log line of its own.

    with Progress("tune", "trial", total=20) as progress:
        for ...:
            progress.done(f"#{n}", note=f"valid aucpr {value:.4f}; best {best:.4f}")

(or `close()` it in a `finally` of its own: a reporter is drawn from its first use until closed).

`LAKEBOOST_PROGRESS` chooses: `tty` (the updating line), `lines` (a log line per unit) or `off`;
unset, `tty` when stderr is a terminal and `lines` otherwise.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TextIO

log = logging.getLogger("lakeboost.progress")
MODE_ENV = "LAKEBOOST_PROGRESS"
Mode = Literal["tty", "lines", "off"]
TICK_SECONDS = 1.0

_lock = threading.RLock()
_active: list[Progress] = []  # reporters in progress, innermost last: the innermost is drawn
_state: dict[str, Any] = {"drawn": False, "ticker": None, "detail": None}


def mode(stream: TextIO | None = None) -> Mode:
    """The progress mode: `LAKEBOOST_PROGRESS` when set, else tty for a terminal, else lines."""
    chosen = os.environ.get(MODE_ENV, "").strip().lower()
    if chosen in ("tty", "lines", "off"):
        return chosen  # type: ignore[return-value]
    target = stream if stream is not None else sys.stderr
    return "tty" if getattr(target, "isatty", lambda: False)() else "lines"


def duration(seconds: float) -> str:
    """`41s`, `3m52s`, `1h02m`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A step's units of work (see the module doc). `total`: how many units, when known (then the
    time left is estimated from the mean time of the units done). `lines=False` for units that log
    a line of their own when done: then only a terminal shows progress."""

    def __init__(self, step: str, unit: str, total: int | None = None, *, lines: bool = True,
                 stream: TextIO | None = None, mode_: Mode | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.step, self.unit, self.total = step, unit, total
        self.stream = stream if stream is not None else sys.stderr
        chosen = mode_ or mode(self.stream)
        # `lines=False`: the units log lines of their own; only a terminal gets the updating line.
        self.mode: Mode = "off" if chosen == "lines" and not lines else chosen
        self.clock = clock
        self.started = clock()
        self.count = 0
        self.current = ""  # the unit being worked on (a terminal shows it)
        self.last = ""  # the last finished unit and its note

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, label: str) -> None:
        """`label` is being worked on now (shown on a terminal; no line elsewhere)."""
        self.current = label
        self._draw()

    def done(self, label: str = "", note: str = "") -> None:
        """One unit finished: `label` names it, `note` says what came of it (a metric, rows)."""
        self.count += 1
        self.current = ""
        self.last = " ".join(part for part in (label, f"({note})" if note else "") if part)
        if self.mode == "lines":
            log.info("%s", self.text())
        else:
            self._draw()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float | None:
        """Seconds left, from the units done so far; None when the total is unknown or none is done."""
        if self.total is None or self.count == 0:
            return None
        return self.elapsed() / self.count * max(0, self.total - self.count)

    def text(self) -> str:
        counted = f"{self.count}/{self.total}" if self.total is not None else f"{self.count}"
        parts = [f"{self.step}: {self.unit} {counted}"]
        if self.current:
            parts.append(f"working on {self.current}")
        elif self.last:
            parts.append(f"done {self.last}")
        timing = f"{duration(self.elapsed())} elapsed"
        left = self.left()
        if left is not None and self.count < (self.total or 0):
            timing += f", ~{duration(left)} left"
        return ", ".join([" ".join(parts), timing])

    def close(self) -> None:
        if self.mode != "tty":
            return
        with _lock:
            if self in _active:
                clear()
                _active.remove(self)
                if not _active:
                    _stop_ticker()
        # What the line said last stays in the scrollback as one log line.
        if self.count:
            log.info("%s", self.text())
        redraw()

    def _draw(self) -> None:
        if self.mode != "tty":
            return
        with _lock:  # on a terminal, drawn from the first use (`with`, start or done) until `close`
            if self not in _active:
                _active.append(self)
                _start_ticker()
        redraw()


def set_detail(detail: Callable[[], str] | None) -> None:
    """What a terminal's line adds after the innermost reporter's text (the Spark stage running)."""
    _state["detail"] = detail


def clear() -> None:
    """Lift the terminal's progress line (before a log line prints)."""
    with _lock:
        if _state["drawn"] and _active:
            stream = _active[-1].stream
            stream.write("\r\x1b[K")
            stream.flush()
        _state["drawn"] = False


def redraw() -> None:
    """Draw the innermost reporter's line again (after a log line, or each tick)."""
    with _lock:
        if not _active:
            return
        top = _active[-1]
        text = top.text()
        detail = _state["detail"]
        if detail is not None:
            try:
                extra = detail()
            except Exception:  # noqa: BLE001 - a detail is decoration; never fail the run for it
                extra = ""
            text += f"  [{extra}]" if extra else ""
        width = shutil.get_terminal_size((100, 20)).columns - 1
        top.stream.write("\r" + text[:width] + "\x1b[K")
        top.stream.flush()
        _state["drawn"] = True


def _start_ticker() -> None:
    if _state["ticker"] is not None:
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(TICK_SECONDS):
            redraw()

    thread = threading.Thread(target=tick, name="lakeboost-progress", daemon=True)
    _state["ticker"] = (thread, stop)
    thread.start()


def _stop_ticker() -> None:
    ticker = _state["ticker"]
    _state["ticker"] = None
    if ticker is not None:
        ticker[1].set()


def spark_stage(spark: Any) -> Callable[[], str]:
    """A `set_detail` provider: the Spark stages running now and their tasks done (classic sessions;
    a Spark Connect client has no status tracker, and gets none)."""
    tracker = spark.sparkContext.statusTracker()

    def detail() -> str:
        shown = []
        for stage_id in sorted(tracker.getActiveStageIds())[:2]:
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                shown.append(f"Spark stage {stage_id}: {info.numCompletedTasks}/{info.numTasks} tasks")
        return "; ".join(shown)

    return detail
