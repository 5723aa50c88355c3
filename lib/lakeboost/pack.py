"""What a job ships to the executors: the runtime packages pinned to the versions installed here,
and what the packed Python environment can leave out.

* `runtime_pins()`: the installed versions of everything lakeboost needs at run time (not its
  test/dev extras); spark-submit.sh packs exactly these for the executors.
* `pack_excludes(config)`: what the packed environment can leave out for this job: the CUDA
  libraries (NCCL, ~470 MB, the bulk of the archive) unless it trains on a GPU.

spark-submit.sh calls both as `python -m lakeboost.pack runtime-pins` and
`python -m lakeboost.pack pack-excludes <job args>`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import LakeboostError

log = logging.getLogger(__name__)


def runtime_pins(dist: str = "lakeboost", root_extras: tuple[str, ...] = ("spark",)) -> list[str]:
    """`name==version` of every installed distribution `dist` needs at run time: its requirements
    and those of `root_extras` (pyspark and delta-spark are lakeboost's `spark` extra), not the others.

    Walks the requirements of the installed metadata, with markers evaluated for this platform and
    the extras each requirement asks of its dependency.
    """
    environment = {key: str(value) for key, value in default_environment().items()}
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    stack: list[tuple[str, frozenset[str]]] = [(dist, frozenset(root_extras))]
    while stack:
        name, extras = stack.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        try:
            found = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: pip resolves it without a pin
        if canonicalize_name(name) != canonicalize_name(dist):
            pins[canonicalize_name(found.metadata["Name"])] = found.version
        for text in found.requires or []:
            requirement = Requirement(text)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""}))
            if wanted:
                stack.append((requirement.name, frozenset(requirement.extras)))
    return sorted(f"{name}=={version}" for name, version in pins.items())


# xgboost loads NCCL (its multi-GPU collective) only for `device: cuda`; CPU training and
# scoring never open it, so a CPU job ships ~470 MB less to every executor and the pack is
# built and unpacked in about half the time.
CUDA_LIBRARIES = "lib/python*/site-packages/nvidia/*"


def pack_excludes(config: LakeboostConfig) -> list[str]:
    """venv-pack exclusion patterns for a job with this config (nothing it can import at run time)."""
    return [] if config.training.model.device == "cuda" else [CUDA_LIBRARIES]


def _job_pack_excludes(job_args: list[str]) -> list[str]:
    """pack_excludes for the config a job's own arguments (--env, --conf-dir, --set) select."""
    from lakeboost.config import load_config
    from lakeboost.runtime import base_parser

    args, _ = base_parser("the job's config").parse_known_args(job_args)
    try:
        config = load_config(args.env, args.overrides, args.conf_dir)
    except LakeboostError as exc:  # the job reports it; the pack keeps everything meanwhile
        log.warning("config not loaded (%s): the packed environment keeps the CUDA libraries", exc)
        return []
    return pack_excludes(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakeboost.pack",
                                     description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("runtime-pins", help="print name==version for each runtime dependency")
    commands.add_parser("pack-excludes", help="print the paths the job's packed environment leaves out; "
                        "the job's own arguments follow (--env, --conf-dir, --set)")
    args, job_args = parser.parse_known_args(argv)
    if args.command == "pack-excludes":
        sys.stdout.write("".join(f"{pattern}\n" for pattern in _job_pack_excludes(job_args)))
        return 0
    if job_args:
        parser.error(f"unrecognized arguments: {' '.join(job_args)}")
    sys.stdout.write("".join(f"{pin}\n" for pin in runtime_pins()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
