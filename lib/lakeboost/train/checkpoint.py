"""Checkpointed boosting: a fit whose barrier stage fails resumes from its last saved round.

Spark cannot retry one task of a barrier stage, so a lost worker (a preempted node, a killed
Python worker) fails the whole xgboost.spark fit, and fit.fit_with_retries runs it again. With
`training.model.checkpoint_every: N`, worker 0 saves the booster (UBJ) and the evaluation
history so far every N rounds to a directory every worker and the driver can read
(`checkpoint_root`: the local temporary directory on a local master, else
`training.model.worker_files_dir`); the retry's workers load the newest checkpoint the driver
found (`CheckpointStore.latest`) and boost the remaining rounds (xgboost's training continuation,
`xgb_model`), on the same data layout (the worker files, or the cached layout, outlive the
attempts). At most N rounds are lost.

The resumed booster equals, tree for tree, the one an uninterrupted fit gives (the continuation
predicts the training rows with the loaded trees, the same sums in the same order), once two
things a continuation does not carry over are restored (`Resumable.train`):

* the sampling's random stream: xgboost draws rows and columns (subsample, colsample_*) from one
  generator seeded once per process, whose state no checkpoint holds; checkpointing turns on
  `seed_per_iteration`, which seeds it from the seed and the booster's round count (xgboost 3.4
  counts the loaded rounds), so the sampled models differ from a fit without checkpoints by their
  draws only, and fits without sampling are unchanged;
* early stopping's state (best score, rounds since it): replayed from the saved history into a
  fresh `EarlyStopping` before the remaining rounds, so the resumed fit stops where the
  uninterrupted one does.

The history also keeps the learning curve whole (the resumed fit's evals_result is the saved
rounds' followed by the new ones). A checkpoint is complete once its history file exists (it is
written after the booster), so a worker killed mid-write leaves the previous one in use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xgboost.callback import EarlyStopping, TrainingCallback

from lakeboost.errors import TrainingError

log = logging.getLogger(__name__)

VALIDATION = "validation"  # xgboost.spark's name for the validation rows in `evals`
_BOOSTER, _HISTORY = "round-{:06d}.ubj", "round-{:06d}.json"
History = dict[str, dict[str, list[float]]]  # xgboost's evals log: data -> metric -> one value per round


def checkpoint_root(configured_dir: str | None, *, master: str) -> str:
    """A fresh directory for one fit's checkpoints, under `training.model.worker_files_dir` when
    set, else (local master only) the temporary directory."""
    if configured_dir:
        return f"{configured_dir.rstrip('/')}/checkpoints-{uuid.uuid4().hex}"
    if not master.startswith("local"):
        raise TrainingError("training.model.checkpoint_every on a cluster needs training.model.worker_files_dir: "
                            "a directory the driver and every executor can read and write (e.g. under the "
                            "lakehouse's storage); or set checkpoint_every: 0")
    return f"{tempfile.gettempdir()}/lakeboost-checkpoints-{uuid.uuid4().hex}"


def _location(path: str) -> tuple[Any, str]:
    """(pyarrow file system, path in it) for a local path or a URI (s3a:// as s3://, dbfs:/ mounted)."""
    import pyarrow.fs as pafs

    if path.startswith("s3a://"):
        path = "s3://" + path[len("s3a://"):]
    if path.startswith("dbfs:/"):
        path = "/dbfs/" + path[len("dbfs:/"):].lstrip("/")
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), path


@dataclass(frozen=True)
class CheckpointStore:
    """One fit's checkpoints under `path`: round-r.ubj (the booster after r rounds) and round-r.json
    (the evaluation history of those rounds). Used on the driver and on the workers."""

    path: str

    def save(self, rounds: int, booster: bytes, history: History, *, keep: int = 2) -> None:
        """Save the booster after `rounds` rounds and its history; keep the newest `keep` checkpoints."""
        filesystem, directory = _location(self.path)
        filesystem.create_dir(directory, recursive=True)
        with filesystem.open_output_stream(f"{directory}/{_BOOSTER.format(rounds)}") as out:
            out.write(booster)
        with filesystem.open_output_stream(f"{directory}/{_HISTORY.format(rounds)}") as out:  # complete now
            out.write(json.dumps({"rounds": rounds, "history": history}).encode())
        for old in self.rounds()[:-keep]:
            for name in (_BOOSTER, _HISTORY):
                with contextlib.suppress(FileNotFoundError):
                    filesystem.delete_file(f"{directory}/{name.format(old)}")

    def rounds(self) -> list[int]:
        """Rounds of the complete checkpoints, oldest first."""
        import pyarrow.fs as pafs

        filesystem, directory = _location(self.path)
        listed = filesystem.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        return sorted(int(info.base_name[len("round-"):-len(".json")]) for info in listed
                      if info.base_name.startswith("round-") and info.base_name.endswith(".json"))

    def latest(self) -> int:
        """Rounds of the newest complete checkpoint, 0 when there is none."""
        return max(self.rounds(), default=0)

    def load(self, rounds: int) -> tuple[bytes, History]:
        filesystem, directory = _location(self.path)
        with filesystem.open_input_stream(f"{directory}/{_BOOSTER.format(rounds)}") as stream:
            booster = stream.read()
        with filesystem.open_input_stream(f"{directory}/{_HISTORY.format(rounds)}") as stream:
            history = json.loads(stream.read())["history"]
        return booster, history

    def remove(self) -> None:
        filesystem, directory = _location(self.path)
        with contextlib.suppress(FileNotFoundError):
            filesystem.delete_dir(directory)


def joined(before: History, after: History) -> History:
    """The evaluation history of rounds `before` then `after`."""
    return {data: {metric: [*before.get(data, {}).get(metric, []), *after.get(data, {}).get(metric, [])]
                   for metric in {*before.get(data, {}), *after.get(data, {})}}
            for data in {*before, *after}}


class SaveEvery(TrainingCallback):
    """Worker 0 saves the booster and the history every `every` rounds (`done` rounds came from the
    checkpoint this fit resumed, with their `history`)."""

    def __init__(self, store: CheckpointStore, every: int, *, done: int, history: History) -> None:
        super().__init__()
        self.store, self.every, self.done, self.history = store, every, done, history

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        from xgboost import collective

        rounds = self.done + epoch + 1
        if rounds % self.every == 0 and collective.get_rank() == 0:
            current = {data: {metric: [float(v) for v in values] for metric, values in metrics.items()}
                       for data, metrics in evals_log.items()}
            self.store.save(rounds, bytes(model.save_raw("ubj")), joined(self.history, current))
        return False


class _Attributes:
    """Stands in for the booster while early stopping replays saved rounds (it only sets attributes)."""

    def set_attr(self, **attributes: Any) -> None:
        pass


def restored_early_stopping(rounds: int, history: History, *, maximize: bool | None) -> EarlyStopping:
    """xgboost's EarlyStopping on the validation rows, in the state it had after `history`'s rounds."""
    stopping = EarlyStopping(rounds=rounds, data_name=VALIDATION, maximize=maximize)
    watched = history.get(VALIDATION, {})
    for epoch in range(min((len(v) for v in watched.values()), default=0)):
        stopping.after_iteration(_Attributes(), epoch,  # type: ignore[arg-type]
                                 {VALIDATION: {metric: values[:epoch + 1] for metric, values in watched.items()}})
    return stopping


@dataclass(frozen=True)
class Resumable:
    """What a worker's xgboost.train needs to checkpoint every `every` rounds into `store` and, when
    `resume_from` > 0, to go on from that checkpoint (pickled with the fit's worker function)."""

    store: CheckpointStore
    every: int
    resume_from: int = 0

    def train(self, train: Callable[..., Any], params: dict[str, Any], dtrain: Any, *args: Any,
              **kwargs: Any) -> Any:
        """`train(params, dtrain, ...)` (xgboost.train's signature) checkpointed, and resumed."""
        import xgboost  # on the worker

        total = int(kwargs.pop("num_boost_round", 10))
        patience = kwargs.pop("early_stopping_rounds", None)
        evals_result = kwargs.pop("evals_result", None)
        history: History = {}
        if self.resume_from:
            booster, history = self.store.load(self.resume_from)
            kwargs["xgb_model"] = xgboost.Booster(model_file=bytearray(booster))
        callbacks = list(kwargs.pop("callbacks", None) or ())
        if patience:
            callbacks.append(restored_early_stopping(patience, history, maximize=kwargs.pop("maximize", None)))
        callbacks.append(SaveEvery(self.store, self.every, done=self.resume_from, history=history))
        new: dict[str, Any] = {}
        booster = train({**params, "seed_per_iteration": True}, dtrain, *args,
                        num_boost_round=max(total - self.resume_from, 0), callbacks=callbacks, evals_result=new,
                        **kwargs)
        if evals_result is not None:
            evals_result.update(joined(history, new))
        return booster
