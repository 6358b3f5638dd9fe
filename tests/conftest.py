"""Shared fixtures: small jet and detector-event samples written as real ROOT files with uproot."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot


def make_jets(num_jets: int, *, seed: int = 0, mean_constituents: float = 30.0) -> dict[str, ak.Array | np.ndarray]:
    """Return random jets in the jet-tree layout: scalar ``jet_*`` and ``label`` plus jagged ``part_*``.

    Constituents scatter around the jet axis with a Gaussian spread of 0.1 in eta and phi,
    sorted by decreasing pT, and their phi is wrapped into [-pi, pi).
    """
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean_constituents, num_jets).clip(min=1)
    total = int(counts.sum())

    jet_eta = rng.uniform(-2, 2, num_jets)
    jet_phi = rng.uniform(-np.pi, np.pi, num_jets)
    jet_index = np.repeat(np.arange(num_jets), counts)

    pt = rng.exponential(10.0, total)
    eta = jet_eta[jet_index] + rng.normal(0, 0.1, total)
    phi = (jet_phi[jet_index] + rng.normal(0, 0.1, total) + np.pi) % (2 * np.pi) - np.pi
    energy = pt * np.cosh(eta)

    # Sort each jet's constituents by decreasing pT (jet index first, then -pT).
    order = np.lexsort((-pt, jet_index))
    pt, eta, phi, energy = pt[order], eta[order], phi[order], energy[order]

    def jagged(values):
        return ak.unflatten(values.astype(np.float32), counts)

    return {
        "jet_pt": rng.uniform(550, 650, num_jets).astype(np.float32),
        "jet_eta": jet_eta.astype(np.float32),
        "jet_phi": jet_phi.astype(np.float32),
        "jet_mass": rng.uniform(0, 250, num_jets).astype(np.float32),
        "label": rng.integers(0, 2, num_jets).astype(np.int32),
        "part_pt": jagged(pt),
        "part_eta": jagged(eta),
        "part_phi": jagged(phi),
        "part_e": jagged(energy),
    }


def jets_to_tree_columns(jets: dict) -> dict:
    """Group ``part_*`` arrays into one record ``part`` so uproot writes the counter ``npart``."""
    columns = {name: values for name, values in jets.items() if not name.startswith("part_")}
    parts = {name.removeprefix("part_"): values for name, values in jets.items() if name.startswith("part_")}
    if parts:
        columns["part"] = ak.zip(parts)
    return columns


def write_tree(path: Path, columns: dict, *, tree: str = "jets", extra_trees: dict | None = None) -> Path:
    """Write ``columns`` as a TTree with ``mktree`` and ``extend`` (plus any ``extra_trees``)."""
    with uproot.recreate(path) as file:
        for name, content in {tree: columns, **(extra_trees or {})}.items():
            types = {key: _branch_type(value) for key, value in content.items()}
            file.mktree(name, types)
            file[name].extend(content)
    return path


def _branch_type(values):
    if isinstance(values, ak.Array):
        return values.type
    if values.dtype.kind in "US":
        return "string"  # uproot's name for a char* branch
    return values.dtype


@pytest.fixture
def write_jet_file(tmp_path):
    """Factory fixture: write ``make_jets(num_jets, seed=seed)`` to a ROOT file and return its path."""

    def write(name: str = "jets.root", *, num_jets: int = 200, seed: int = 0, tree: str = "jets", **overrides) -> Path:
        jets = make_jets(num_jets, seed=seed)
        jets.update(overrides)
        return write_tree(tmp_path / name, jets_to_tree_columns(jets), tree=tree)

    return write


@pytest.fixture
def jet_file(write_jet_file) -> Path:
    """A 200-jet file with tree ``jets``, written by uproot."""
    return write_jet_file()


def make_events(num_events: int, *, seed: int = 0, mean_hits: float = 40.0) -> dict[str, ak.Array | np.ndarray]:
    """Return random detector events in the events-tree layout: ``label``, ``nu_energy`` and jagged ``hit_*``.

    Each event's hits lie along a straight track from a random start plane: planes
    alternate between the views (``hit_view == hit_plane % 2``), cells scatter around a
    per-view line, and ``hit_adc`` and ``hit_energy`` are positive. Every event has at
    least one hit.
    """
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean_hits, num_events).clip(min=1)
    total = int(counts.sum())
    event_index = np.repeat(np.arange(num_events), counts)

    first_plane = rng.integers(0, 400, num_events)
    plane = first_plane[event_index] + rng.integers(0, 120, total)
    view = plane % 2
    start_cell = rng.integers(100, 300, (num_events, 2))
    slope = rng.normal(0, 0.5, (num_events, 2))
    cell = start_cell[event_index, view] + slope[event_index, view] * (plane - first_plane[event_index])
    cell = np.clip(np.rint(cell + rng.normal(0, 2, total)), 0, 383).astype(np.int32)
    adc = rng.exponential(80.0, total) + 10.0

    def jagged(values, dtype):
        return ak.unflatten(values.astype(dtype), counts)

    return {
        "label": rng.integers(0, 4, num_events).astype(np.int32),
        "nu_energy": rng.uniform(0.5, 5.0, num_events).astype(np.float32),
        "hit_view": jagged(view, np.int32),
        "hit_plane": jagged(plane, np.int32),
        "hit_cell": jagged(cell, np.int32),
        "hit_adc": jagged(adc, np.float32),
        "hit_energy": jagged(adc * 1e-4, np.float32),
    }


def events_to_tree_columns(events: dict) -> dict:
    """Group ``hit_*`` arrays into one record ``hit`` so uproot writes the counter ``nhit``."""
    columns = {name: values for name, values in events.items() if not name.startswith("hit_")}
    hits = {name.removeprefix("hit_"): values for name, values in events.items() if name.startswith("hit_")}
    if hits:
        columns["hit"] = ak.zip(hits)
    return columns


@pytest.fixture
def write_event_file(tmp_path):
    """Factory fixture: write ``make_events(num_events, seed=seed)`` to a ROOT file and return its path.

    Keyword arguments replace fields of the events; a value of None removes the field.
    """

    def write(name: str = "events.root", *, num_events: int = 60, seed: int = 0, tree: str = "events", **overrides) -> Path:
        events = make_events(num_events, seed=seed)
        for field_name, values in overrides.items():
            if values is None:
                events.pop(field_name)
            else:
                events[field_name] = values
        return write_tree(tmp_path / name, events_to_tree_columns(events), tree=tree)

    return write


@pytest.fixture
def event_file(write_event_file) -> Path:
    """A 60-event file with tree ``events`` and both ``hit_adc`` and ``hit_energy``, written by uproot."""
    return write_event_file()
