"""Balanced top/QCD jet samples from parallel Pythia workers, written as one ROOT file.

This is the public entry point (`generate_jets`, `JetGenConfig`, `is_truth_matched`). The
physics of one class (Pythia setup, clustering, truth matching) is in `jet_physics`.

Seeds: `numpy.random.SeedSequence(seed)` spawns one child for the final shuffle and one
per worker. Each worker child gives the Pythia seeds of its top and its QCD instance.
The same `seed` and `workers` therefore give identical arrays, while a different worker
count gives a different (equally valid) sample.
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

from jetnu.sim.jet_batch import JetBatch, write_jet_tree
from jetnu.sim.jet_physics import (
    QCD_LABEL,
    TOP_LABEL,
    ClassStats,
    JetGenConfig,
    format_class,
    generate_class_jets,
    is_truth_matched,
    pythia_seeds,
)
from jetnu.sim.quiet import silence_fastjet_banner

__all__ = [
    "QCD_LABEL",
    "TOP_LABEL",
    "GenerationSummary",
    "JetGenConfig",
    "WorkerTask",
    "generate_jets",
    "is_truth_matched",
    "plan_tasks",
    "run_task",
    "split_quota",
]

logger = logging.getLogger(__name__)

# Seconds between progress messages from a worker, and between liveness checks in the parent.
_PROGRESS_INTERVAL_S = 0.2
_POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class GenerationSummary:
    """Record of one `generate_jets` run: output path, jet and event counts, wall time."""

    path: Path
    seed: int
    workers: int
    n_jets: dict[str, int]  # class name ("top", "QCD") -> jets written
    n_events: dict[str, int]  # class name -> successful Pythia events
    n_failed_events: int  # Pythia events that failed and were skipped, both classes
    wall_time_s: float

    def describe(self) -> str:
        """Return a one-line summary for the end of a command-line run."""
        total = sum(self.n_jets.values())
        jets = " + ".join(f"{n} {name}" for name, n in self.n_jets.items())
        events = " + ".join(f"{n} {name}" for name, n in self.n_events.items())
        failed = f", {self.n_failed_events} failed events skipped" if self.n_failed_events else ""
        rate = total / self.wall_time_s if self.wall_time_s > 0 else float("inf")
        return (
            f"wrote {jets} jets from {events} events{failed} in {self.wall_time_s:.1f} s "
            f"({rate:.0f} jets/s, {self.workers} worker{'s' if self.workers != 1 else ''}, seed {self.seed}) "
            f"to {self.path}"
        )


@dataclass(frozen=True)
class WorkerTask:
    """The share of one worker: jet quotas per class and the Pythia seeds to use."""

    index: int
    n_top: int
    n_qcd: int
    top_seed: int
    qcd_seed: int
    config: JetGenConfig


def split_quota(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` integers that differ by at most one, larger ones first."""
    base, remainder = divmod(total, parts)
    return [base + (1 if i < remainder else 0) for i in range(parts)]


def plan_tasks(
    n_jets: int, seed: int, workers: int, config: JetGenConfig
) -> tuple[list[WorkerTask], np.random.SeedSequence]:
    """Split the class quotas over workers and derive their seeds.

    Returns the tasks and the seed sequence for the final shuffle. Top jets are
    `n_jets // 2`, QCD jets the rest.
    """
    shuffle_sequence, *worker_sequences = np.random.SeedSequence(seed).spawn(workers + 1)
    top_quotas = split_quota(n_jets // 2, workers)
    qcd_quotas = split_quota(n_jets - n_jets // 2, workers)

    tasks = []
    for index, sequence in enumerate(worker_sequences):
        top_seed, qcd_seed = pythia_seeds(sequence, 2)
        tasks.append(WorkerTask(index, top_quotas[index], qcd_quotas[index], top_seed, qcd_seed, config))
    return tasks, shuffle_sequence


def run_task(
    task: WorkerTask, on_jets: Callable[[int], None] | None = None
) -> tuple[JetBatch | None, list[ClassStats]]:
    """Generate the jets of one task in this process. The batch is None when both quotas are 0."""
    silence_fastjet_banner()

    batches = []
    stats = []
    shares = ((TOP_LABEL, task.n_top, task.top_seed), (QCD_LABEL, task.n_qcd, task.qcd_seed))
    for label, n_jets, pythia_seed in shares:
        if n_jets == 0:
            continue
        batch, class_stats = generate_class_jets(label, n_jets, pythia_seed, task.config, on_jets)
        batches.append(batch)
        stats.append(class_stats)

    if not batches:
        return None, stats
    return JetBatch.concatenate(batches), stats


class _ProgressSender:
    """Forward jet counts from a worker to the parent, at most every `_PROGRESS_INTERVAL_S`."""

    def __init__(self, queue, index: int):
        self.queue = queue
        self.index = index
        self.pending = 0
        self.last_sent = time.monotonic()

    def add(self, n_jets: int) -> None:
        self.pending += n_jets
        if time.monotonic() - self.last_sent >= _PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.queue.put(("jets", self.index, self.pending))
        self.pending = 0
        self.last_sent = time.monotonic()


def _worker_main(task: WorkerTask, queue) -> None:
    # Ctrl-C reaches the whole process group, but only the parent handles it (it ends the workers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sender = _ProgressSender(queue, task.index)
        batch, stats = run_task(task, sender.add)
        sender.flush()
        queue.put(("done", task.index, batch, stats))
    except BaseException as error:
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
        queue.put(("error", task.index, error, traceback.format_exc()))


def _run_workers(
    tasks: list[WorkerTask], on_jets: Callable[[int], None]
) -> list[tuple[JetBatch | None, list[ClassStats]]]:
    """Run each task in its own spawned process and return the results in task order."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_worker_main, args=(task, queue), name=f"jetnu-jets-{task.index}", daemon=True)
        for task in tasks
    ]
    started = []
    results: dict[int, tuple[JetBatch | None, list[ClassStats]]] = {}
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
                            f"generation worker {index} exited with code {process.exitcode} without a result"
                        ) from None
                continue

            kind, index, *payload = message
            if kind == "jets":
                on_jets(payload[0])
            elif kind == "done":
                results[index] = (payload[0], payload[1])
            else:
                error, remote_traceback = payload
                error.add_note(f"raised in generation worker {index}:\n{remote_traceback}")
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


def generate_jets(
    n_jets: int,
    seed: int,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    config: JetGenConfig | None = None,
    progress: bool | None = None,
) -> GenerationSummary:
    """Generate `n_jets` jets, `n_jets // 2` top and the rest QCD, and write them to `out`.

    The jets are shuffled with a permutation drawn from `seed`, so any entry range of more
    than a few jets contains both classes in about equal numbers. The file is written under
    a temporary name in the folder of `out` and renamed when complete. On any error or
    interrupt the temporary file is removed.

    `workers` > 1 starts that many processes with the "spawn" method, so a script calling
    this must guard its entry point with ``if __name__ == "__main__":``. With one worker
    the jets are generated in this process. `progress` shows a tqdm bar on stderr: None
    shows it only when stderr is a terminal.

    Raises `TypeError` or `ValueError` for invalid arguments or Pythia settings, and
    `RuntimeError` when Pythia fails repeatedly, the selection yields no jets or a worker dies.
    """
    _check_int("n_jets", n_jets, 2)
    _check_int("seed", seed, 0)
    _check_int("workers", workers, 1)
    config = JetGenConfig() if config is None else config
    out = Path(out)

    tasks, shuffle_sequence = plan_tasks(int(n_jets), int(seed), int(workers), config)
    logger.debug("generating %d jets with %d workers, seed %d, %s", n_jets, workers, seed, config)

    if out.is_dir():
        raise IsADirectoryError(f"output path {str(out)!r} is a directory; give a file name such as {str(out / 'jets.root')!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out.with_name(f"{out.name}.{secrets.token_hex(4)}.tmp")
    start = time.perf_counter()
    # Create the temporary file first, so an unwritable folder fails before generation.
    tmp_path.open("xb").close()
    try:
        disable = None if progress is None else not progress
        with tqdm(total=int(n_jets), unit="jet", desc="generating jets", disable=disable) as bar:
            if workers == 1:
                results = [run_task(tasks[0], bar.update)]
            else:
                results = _run_workers(tasks, bar.update)

        sample = JetBatch.concatenate([batch for batch, _ in results if batch is not None])
        permutation = np.random.default_rng(shuffle_sequence).permutation(len(sample))
        sample = sample.take(permutation)

        write_jet_tree(tmp_path, sample)
        os.replace(tmp_path, out)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    wall_time_s = time.perf_counter() - start

    all_stats = [class_stats for _, stats in results for class_stats in stats]
    labels = (TOP_LABEL, QCD_LABEL)
    summary = GenerationSummary(
        path=out,
        seed=int(seed),
        workers=int(workers),
        n_jets={format_class(label): sum(s.n_jets for s in all_stats if s.label == label) for label in labels},
        n_events={format_class(label): sum(s.n_events for s in all_stats if s.label == label) for label in labels},
        n_failed_events=sum(s.n_failed_events for s in all_stats),
        wall_time_s=wall_time_s,
    )
    logger.debug("%s", summary.describe())
    return summary
