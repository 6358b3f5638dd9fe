"""Balanced neutrino-detector samples from parallel worker processes, written as one ROOT file.

Seeds: event i draws from its own generator, `SeedSequence(seed, spawn_key=(1, i))`, and
the class labels are shuffled by `SeedSequence(seed, spawn_key=(0,))`. Workers take
contiguous ranges of events, so the same `seed` gives identical arrays for any number of
workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue as queue_module
import secrets
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from jetnu.data.schema import NEUTRINO_CLASS_NAMES
from jetnu.sim.neutrino.batch import EventBatch, write_event_tree
from jetnu.sim.neutrino.config import DetectorConfig
from jetnu.sim.neutrino.events import balanced_labels, simulate_events, split_range

logger = logging.getLogger(__name__)

# Seconds between progress messages from a worker, and between liveness checks in the parent.
_PROGRESS_INTERVAL_S = 0.2
_POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class NeutrinoGenerationSummary:
    """Record of one `generate_neutrino_events` run: output path, counts per class, wall time."""

    path: Path
    seed: int
    workers: int
    n_events: dict[str, int]  # class name -> events written
    mean_hits: dict[str, float]  # class name -> mean number of hits per event
    n_redraws: int  # events drawn again because they had fewer than min_hits hits
    wall_time_s: float

    def describe(self) -> str:
        """Return a one-line summary for the end of a command-line run."""
        total = sum(self.n_events.values())
        counts = " + ".join(f"{n} {name}" for name, n in self.n_events.items() if n)
        hits = ", ".join(f"{name} {mean:.0f}" for name, mean in self.mean_hits.items() if self.n_events[name])
        rate = total / self.wall_time_s if self.wall_time_s > 0 else float("inf")
        return (
            f"wrote {counts} events in {self.wall_time_s:.1f} s ({rate:.0f} events/s, {self.workers} "
            f"worker{'s' if self.workers != 1 else ''}, seed {self.seed}) to {self.path}, "
            f"mean hits per event: {hits}, {self.n_redraws} events redrawn below min_hits"
        )


@dataclass(frozen=True)
class EventTask:
    """The share of one worker: events `start`..`stop - 1` of the sample and their labels."""

    index: int
    start: int
    labels: np.ndarray  # (stop - start,) int32
    seed: int
    config: DetectorConfig


def run_task(task: EventTask, on_events: Callable[[int], None] | None = None) -> tuple[EventBatch, int]:
    """Simulate the events of one task in this process and return the batch and the number of redraws."""
    return simulate_events(task.labels, task.start, task.seed, task.config, on_events)


class _ProgressSender:
    """Forward event counts from a worker to the parent, at most every `_PROGRESS_INTERVAL_S`."""

    def __init__(self, queue, index: int):
        self.queue = queue
        self.index = index
        self.pending = 0
        self.last_sent = time.monotonic()

    def add(self, n_events: int) -> None:
        self.pending += n_events
        if time.monotonic() - self.last_sent >= _PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.queue.put(("events", self.index, self.pending))
        self.pending = 0
        self.last_sent = time.monotonic()


def _worker_main(task: EventTask, queue) -> None:
    # Ctrl-C reaches the whole process group, but only the parent handles it (it ends the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sender = _ProgressSender(queue, task.index)
        batch, redraws = run_task(task, sender.add)
        sender.flush()
        queue.put(("done", task.index, batch, redraws))
    except BaseException as error:
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
        queue.put(("error", task.index, error, traceback.format_exc()))


def _run_workers(tasks: list[EventTask], on_events: Callable[[int], None]) -> list[tuple[EventBatch, int]]:
    """Run each task in its own spawned process and return the results in task order."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_worker_main, args=(task, queue), name=f"jetnu-neutrino-{task.index}", daemon=True)
        for task in tasks
    ]
    started = []
    results: dict[int, tuple[EventBatch, int]] = {}
    try:
        for process in processes:
            process.start()
            started.append(process)

        # A worker that has exited has already flushed its messages into the pipe, so one
        # that is still missing after two empty polls died without reporting.
        missing_polls = dict.fromkeys(range(len(tasks)), 0)
        while len(results) < len(tasks):
            try:
                message = queue.get(timeout=_POLL_INTERVAL_S)
            except queue_module.Empty:
                for index, process in enumerate(processes):
                    if index in results or process.is_alive():
                        continue
                    missing_polls[index] += 1
                    if missing_polls[index] >= 2:
                        raise RuntimeError(
                            f"simulation worker {index} exited with code {process.exitcode} without a result"
                        ) from None
                continue

            kind, index, *payload = message
            if kind == "events":
                on_events(payload[0])
            elif kind == "done":
                results[index] = (payload[0], payload[1])
            else:
                error, remote_traceback = payload
                error.add_note(f"raised in simulation worker {index}:\n{remote_traceback}")
                raise error

        for process in started:
            process.join()
    finally:
        for process in started:
            if process.is_alive():
                process.terminate()
        for process in started:
            process.join()
        queue.close()

    return [results[index] for index in range(len(tasks))]


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")


def resolve_classes(classes) -> tuple[int, ...]:
    """Turn class names or labels into sorted unique labels. None means all four classes."""
    if classes is None:
        return tuple(range(len(NEUTRINO_CLASS_NAMES)))
    if isinstance(classes, str):
        classes = (classes,)
    labels = set()
    for item in classes:
        if isinstance(item, str):
            if item not in NEUTRINO_CLASS_NAMES:
                raise ValueError(f"unknown event class {item!r}, expected one of {list(NEUTRINO_CLASS_NAMES)}")
            labels.add(NEUTRINO_CLASS_NAMES.index(item))
            continue

        is_label = isinstance(item, (int, np.integer)) and not isinstance(item, bool)
        if not is_label or not 0 <= item < len(NEUTRINO_CLASS_NAMES):
            raise ValueError(
                f"invalid event class {item!r}, expected a name in {list(NEUTRINO_CLASS_NAMES)} or its index"
            )
        labels.add(int(item))
    if not labels:
        raise ValueError("classes is empty, expected at least one event class")
    return tuple(sorted(labels))


def generate_neutrino_events(
    n_events: int,
    seed: int,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    config: DetectorConfig | None = None,
    classes=None,
    progress: bool | None = None,
) -> NeutrinoGenerationSummary:
    """Simulate `n_events` detector events, split evenly over `classes`, and write them to `out`.

    `classes` takes names from `NEUTRINO_CLASS_NAMES` or their labels, and None means all
    four. Class quotas differ by at most one and the events are in shuffled order. The file
    is written under a temporary name in the folder of `out` and renamed when complete.
    On any error or interrupt the temporary file is removed.

    `workers` > 1 starts that many processes with the "spawn" method, so a script calling
    this must guard its entry point with ``if __name__ == "__main__":``. The arrays do not
    depend on `workers`. `progress` shows a tqdm bar on stderr: None shows it only when
    stderr is a terminal.

    Raises `TypeError` or `ValueError` for invalid arguments, and `RuntimeError` when
    events keep falling below `config.min_hits` or a worker dies.
    """
    _check_int("n_events", n_events, 1)
    _check_int("seed", seed, 0)
    _check_int("workers", workers, 1)
    config = DetectorConfig() if config is None else config
    if not isinstance(config, DetectorConfig):
        raise TypeError(f"config must be a DetectorConfig, got {type(config).__name__}")
    labels = balanced_labels(int(n_events), int(seed), resolve_classes(classes))
    out = Path(out)

    # More workers than events would leave some idle, so they are not started.
    ranges = split_range(int(n_events), min(int(workers), int(n_events)))
    tasks = [
        EventTask(index, start, labels[start:stop], int(seed), config) for index, (start, stop) in enumerate(ranges)
    ]
    logger.debug("simulating %d events with %d workers, seed %d, %s", n_events, len(tasks), seed, config)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out.with_name(f"{out.name}.{secrets.token_hex(4)}.tmp")
    start_time = time.perf_counter()
    # Create the temporary file first, so an unwritable folder fails before the simulation.
    tmp_path.open("xb").close()
    try:
        disable = None if progress is None else not progress
        with tqdm(total=int(n_events), unit="event", desc="simulating events", disable=disable) as bar:
            if len(tasks) == 1:
                results = [run_task(tasks[0], bar.update)]
            else:
                results = _run_workers(tasks, bar.update)

        sample = EventBatch.concatenate([batch for batch, _ in results])
        write_event_tree(tmp_path, sample)
        os.replace(tmp_path, out)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    wall_time_s = time.perf_counter() - start_time

    n_per_class = {}
    mean_hits = {}
    for label, name in enumerate(NEUTRINO_CLASS_NAMES):
        selected = sample.scalars["label"] == label
        n_per_class[name] = int(selected.sum())
        mean_hits[name] = float(sample.counts[selected].mean()) if selected.any() else 0.0
    summary = NeutrinoGenerationSummary(
        path=out,
        seed=int(seed),
        workers=int(workers),
        n_events=n_per_class,
        mean_hits=mean_hits,
        n_redraws=sum(redraws for _, redraws in results),
        wall_time_s=wall_time_s,
    )
    logger.debug("%s", summary.describe())
    return summary
