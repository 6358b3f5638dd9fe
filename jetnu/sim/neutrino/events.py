"""Events of each class (primary particles, their deposits, the readout) and the labels of a sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jetnu.data.schema import NEUTRINO_CLASS_NAMES
from jetnu.sim.neutrino.batch import HIT_DTYPES, SCALAR_DTYPES, EventBatch
from jetnu.sim.neutrino.config import DetectorConfig
from jetnu.sim.neutrino.deposits import Deposits, simulate_particle
from jetnu.sim.neutrino.geometry import sample_vertex
from jetnu.sim.neutrino.particles import (
    MASSES_MEV,
    cosmic_muon,
    isotropic_direction,
    neutrino_interaction,
    sample_nu_energy_gev,
)
from jetnu.sim.neutrino.readout import Hits, read_out

NUMU_CC = NEUTRINO_CLASS_NAMES.index("numu_cc")
NUE_CC = NEUTRINO_CLASS_NAMES.index("nue_cc")
NC = NEUTRINO_CLASS_NAMES.index("nc")
COSMIC = NEUTRINO_CLASS_NAMES.index("cosmic")

# Outgoing lepton of each neutrino class. "nu" is the invisible neutrino of NC events.
LEPTON_OF_CLASS = {NUMU_CC: "mu", NUE_CC: "e", NC: "nu"}

# Give up when this many draws in a row give fewer than `min_hits` hits.
MAX_REDRAWS = 1000


@dataclass(frozen=True)
class EventTruth:
    """True quantities of one event."""

    label: int  # index into NEUTRINO_CLASS_NAMES
    nu_energy_gev: float  # 0 for cosmic muons
    lepton_energy_gev: float  # outgoing lepton (neutrino for NC, muon for cosmic muons)
    y_inelasticity: float  # 0 for cosmic muons
    vertex_cm: np.ndarray  # (3,) interaction vertex or cosmic entry point


def particle_hits(
    kind: str,
    kinetic_mev: float,
    start,
    direction,
    rng: np.random.Generator,
    config: DetectorConfig | None = None,
) -> Hits:
    """Simulate one particle of `kind` (see `simulate_particle`) and return its hits."""
    config = DetectorConfig() if config is None else config
    deposits = Deposits()
    simulate_particle(kind, kinetic_mev, start, direction, rng, config, deposits)
    return read_out(*deposits.arrays(), rng, config)


def _deposit_event(label: int, rng: np.random.Generator, config: DetectorConfig) -> tuple[Deposits, EventTruth]:
    deposits = Deposits()
    if label == COSMIC:
        entry, direction, energy_gev = cosmic_muon(rng, config)
        kinetic = energy_gev * 1000.0 - MASSES_MEV["mu"]
        simulate_particle("mu", kinetic, entry, direction, rng, config, deposits)
        return deposits, EventTruth(label, 0.0, energy_gev, 0.0, entry)

    nu_energy = sample_nu_energy_gev(rng, config)
    vertex = sample_vertex(rng, config)
    particles, lepton_energy, inelasticity = neutrino_interaction(nu_energy, LEPTON_OF_CLASS[label], rng)
    for kind, four_momentum in particles:
        momentum = four_momentum[1:]
        norm = float(np.linalg.norm(momentum))
        direction = momentum / norm if norm > 0 else isotropic_direction(rng)
        kinetic = float(four_momentum[0]) - MASSES_MEV[kind]
        simulate_particle(kind, kinetic, vertex, direction, rng, config, deposits)
    return deposits, EventTruth(label, nu_energy, lepton_energy, inelasticity, vertex)


def simulate_event(
    label: int, rng: np.random.Generator, config: DetectorConfig | None = None
) -> tuple[Hits, EventTruth, int]:
    """Simulate one event of class `label` and return its hits, its truth and the number of redraws.

    Events with fewer than `config.min_hits` hits are drawn again from the same generator.
    Raises RuntimeError after `MAX_REDRAWS` such draws in a row.
    """
    if label not in (NUMU_CC, NUE_CC, NC, COSMIC):
        raise ValueError(f"invalid class label {label!r}, expected 0..{len(NEUTRINO_CLASS_NAMES) - 1}")
    config = DetectorConfig() if config is None else config

    for redraws in range(MAX_REDRAWS):
        deposits, truth = _deposit_event(label, rng, config)
        hits = read_out(*deposits.arrays(), rng, config)
        if len(hits) >= config.min_hits:
            return hits, truth, redraws
    raise RuntimeError(
        f"{MAX_REDRAWS} {NEUTRINO_CLASS_NAMES[label]} events in a row had fewer than min_hits={config.min_hits} "
        f"hits. Lower min_hits or threshold_adc ({config.threshold_adc})"
    )


def event_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of event `index` of a sample with `seed`, independent of how events are split over workers."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, index)))


def simulate_events(
    labels: np.ndarray, first_index: int, seed: int, config: DetectorConfig, on_event=None
) -> tuple[EventBatch, int]:
    """Simulate events `first_index`, `first_index + 1`, ... with the given labels.

    Returns the batch and the total number of redraws. `on_event(1)` is called after each event.
    """
    scalars: dict[str, list] = {name: [] for name in SCALAR_DTYPES}
    hit_lists: dict[str, list] = {name: [] for name in HIT_DTYPES}
    counts = []
    total_redraws = 0

    for offset, label in enumerate(labels):
        rng = event_rng(seed, first_index + offset)
        hits, truth, redraws = simulate_event(int(label), rng, config)
        total_redraws += redraws

        scalars["label"].append(truth.label)
        scalars["nu_energy"].append(truth.nu_energy_gev)
        scalars["lepton_energy"].append(truth.lepton_energy_gev)
        scalars["y_inelasticity"].append(truth.y_inelasticity)
        for axis, value in zip("xyz", truth.vertex_cm):
            scalars[f"vertex_{axis}"].append(value)
        for name in hit_lists:
            hit_lists[name].append(getattr(hits, name))
        counts.append(len(hits))
        if on_event is not None:
            on_event(1)

    def join(arrays):
        return np.concatenate(arrays) if arrays else np.zeros(0)

    batch = EventBatch.from_columns(
        {name: np.asarray(values) for name, values in scalars.items()},
        np.asarray(counts, dtype=np.int64),
        {name: join(arrays) for name, arrays in hit_lists.items()},
    )
    return batch, total_redraws


def balanced_labels(n_events: int, seed: int, classes: tuple[int, ...]) -> np.ndarray:
    """Labels of a sample: `classes` in quotas that differ by at most one, shuffled with the seed."""
    base, remainder = divmod(n_events, len(classes))
    quotas = [base + (1 if i < remainder else 0) for i in range(len(classes))]
    labels = np.repeat(np.asarray(classes, dtype=np.int32), quotas)
    shuffle = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    return labels[shuffle.permutation(n_events)]


def split_range(n_events: int, parts: int) -> list[tuple[int, int]]:
    """Split 0..n_events into `parts` contiguous (start, stop) ranges whose sizes differ by at most one."""
    base, remainder = divmod(n_events, parts)
    ranges = []
    start = 0
    for i in range(parts):
        stop = start + base + (1 if i < remainder else 0)
        ranges.append((start, stop))
        start = stop
    return ranges
