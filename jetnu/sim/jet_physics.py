"""Top and QCD jets from Pythia8 events, clustered with FastJet and truth-matched.

Each Pythia instance generates one class: top-pair events (W bosons forced to hadrons)
give top jets, hard QCD 2 -> 2 events give QCD jets. Jets are anti-kT jets of the visible
final-state particles, or of the detector-level constituents that `jetnu.sim.detector`
makes from them when ``JetGenConfig.detector`` is "towers". A top jet is kept only when
four partons lie within `match_dr` of the jet axis: the top quark, the down-type quark
from its decay and both quarks from the W decay. The down-type quark is a b in 99.8 % of
Pythia 8.317 top decays. A QCD event contributes every jet that passes the selection, so
it can give zero, one, two or more.

Balanced samples of both classes, split over worker processes, come from
`jetnu.sim.pythia_jets.generate_jets`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import fastjet
import numpy as np
import pythia8mc

from jetnu.sim.detector import DetectorConfig, TowerDetector
from jetnu.sim.jet_batch import JetBatch

logger = logging.getLogger(__name__)

QCD_LABEL = 0
TOP_LABEL = 1

# Pythia's Random:seed takes 1..900_000_000 for a fixed seed (0 draws one from the time, negative
# values give the default seed).
PYTHIA_SEED_MAX = 900_000_000

# Process switches per class label, added to the common settings in `make_pythia`.
PROCESS_SETTINGS: dict[int, tuple[str, ...]] = {
    TOP_LABEL: (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",  # W -> q q' only
    ),
    QCD_LABEL: ("HardQCD:all = on",),
}

# Give up on a class when this many events in a row yield no jet at all, because the
# selection then cannot be met (for example a jet pT window far outside the pT-hat window).
MAX_EVENTS_WITHOUT_JET = 5000

# Jet constituents: "none" clusters the particles themselves, "towers" the output of
# `jetnu.sim.detector.TowerDetector`.
DETECTOR_CHOICES = ("none", "towers")

# Mixed into the detector's random seed, so its stream differs from any other use of the Pythia seed.
_DETECTOR_SEED_TAG = 0x6A657464


@dataclass(frozen=True)
class JetGenConfig:
    """Physics settings of a jet sample, energies and momenta in GeV."""

    sqrt_s_gev: float = 14000.0  # pp centre-of-mass energy, GeV
    pthat_min_gev: float = 550.0  # lower edge of the hard-process pT-hat window, GeV
    pthat_max_gev: float = 650.0  # upper edge of the pT-hat window, GeV
    jet_r: float = 0.8  # anti-kT distance parameter R
    pt_min_gev: float = 550.0  # keep jets with pt_min_gev < pT < pt_max_gev, GeV
    pt_max_gev: float = 650.0
    abs_eta_max: float = 2.0  # keep jets with |eta| below this pseudorapidity
    particle_abs_eta_max: float = 5.0  # particles beyond this |eta| are dropped before clustering
    match_dr: float = 0.8  # top-jet truth match: max Delta R between the jet axis and each parton
    max_constituents: int = 200  # keep at most this many constituents per jet, hardest first
    max_consecutive_failures: int = 100  # raise after this many failed Pythia events in a row
    pythia_settings: tuple[str, ...] = ()  # extra "Key = value" lines, read last
    detector: str = "none"  # one of DETECTOR_CHOICES (truth matching uses the partons in both)
    detector_config: DetectorConfig = field(default_factory=DetectorConfig)  # used when detector == "towers"

    def __post_init__(self):
        positive = {
            "sqrt_s_gev": self.sqrt_s_gev,
            "jet_r": self.jet_r,
            "abs_eta_max": self.abs_eta_max,
            "particle_abs_eta_max": self.particle_abs_eta_max,
            "match_dr": self.match_dr,
            "max_constituents": self.max_constituents,
            "max_consecutive_failures": self.max_consecutive_failures,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")

        for name in ("max_constituents", "max_consecutive_failures"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")

        if not 0 <= self.pthat_min_gev < self.pthat_max_gev:
            raise ValueError(
                f"the pT-hat window must satisfy 0 <= pthat_min_gev < pthat_max_gev, "
                f"got {self.pthat_min_gev!r} and {self.pthat_max_gev!r}"
            )
        if not 0 <= self.pt_min_gev < self.pt_max_gev:
            raise ValueError(
                f"the jet pT window must satisfy 0 <= pt_min_gev < pt_max_gev, "
                f"got {self.pt_min_gev!r} and {self.pt_max_gev!r}"
            )
        if self.pthat_max_gev > self.sqrt_s_gev / 2:
            raise ValueError(
                f"pthat_max_gev={self.pthat_max_gev!r} exceeds half the centre-of-mass energy "
                f"({self.sqrt_s_gev / 2!r} GeV)"
            )

        if self.detector not in DETECTOR_CHOICES:
            raise ValueError(f"detector must be one of {list(DETECTOR_CHOICES)}, got {self.detector!r}")
        if not isinstance(self.detector_config, DetectorConfig):
            raise ValueError(f"detector_config must be a DetectorConfig, got {self.detector_config!r}")

        if isinstance(self.pythia_settings, str):
            raise ValueError("pythia_settings must be a sequence of 'Key = value' strings, not one string")
        object.__setattr__(self, "pythia_settings", tuple(self.pythia_settings))


@dataclass(frozen=True)
class ClassStats:
    """Event counts behind the jets of one class from one Pythia instance."""

    label: int
    n_jets: int
    n_events: int  # successful events
    n_failed_events: int  # events where pythia.next() failed, skipped


def pythia_seeds(seed_sequence: np.random.SeedSequence, count: int) -> list[int]:
    """Draw `count` distinct Pythia seeds in 1..PYTHIA_SEED_MAX from a numpy seed sequence."""
    # Spare words cover repeats, whose odds are about count**2 / 1e9 per draw.
    words = seed_sequence.generate_state(4 * count, dtype=np.uint64)
    seeds = list(dict.fromkeys(1 + int(word) % PYTHIA_SEED_MAX for word in words))[:count]
    if len(seeds) < count:
        raise RuntimeError(f"could not draw {count} distinct Pythia seeds from {seed_sequence!r}")
    return seeds


def make_pythia(label: int, seed: int, config: JetGenConfig) -> pythia8mc.Pythia:
    """Create and initialise a quiet Pythia instance for one class (`TOP_LABEL` or `QCD_LABEL`).

    Raises `ValueError` for a setting Pythia does not accept and `RuntimeError` when
    initialisation fails.
    """
    if label not in PROCESS_SETTINGS:
        raise ValueError(f"unknown class label {label!r}, expected one of {sorted(PROCESS_SETTINGS)}")
    if not 1 <= seed <= PYTHIA_SEED_MAX:
        raise ValueError(f"Pythia seed must be in 1..{PYTHIA_SEED_MAX}, got {seed!r}")

    # The second argument turns off the banner, which the constructor prints before any
    # setting is read. MPI and ISR/FSR keep their Pythia defaults (on).
    pythia = pythia8mc.Pythia("", False)
    settings = [
        "Print:quiet = on",
        "Beams:idA = 2212",
        "Beams:idB = 2212",
        f"Beams:eCM = {float(config.sqrt_s_gev)!r}",
        f"PhaseSpace:pTHatMin = {float(config.pthat_min_gev)!r}",
        f"PhaseSpace:pTHatMax = {float(config.pthat_max_gev)!r}",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        *PROCESS_SETTINGS[label],
        *config.pythia_settings,
    ]
    for line in settings:
        # warn=False keeps Pythia from printing its own message to stdout.
        if not pythia.readString(line, False):
            raise ValueError(f"Pythia rejected the setting {line!r}. Check its key and value in the Pythia manual.")

    if not pythia.init():
        raise RuntimeError(f"Pythia initialisation failed for class label {label} with settings {settings!r}")
    return pythia


def wrap_phi(phi):
    """Map angles in rad to [-pi, pi)."""
    return np.mod(np.asarray(phi, dtype=np.float64) + np.pi, 2 * np.pi) - np.pi


def is_truth_matched(jet_eta: float, jet_phi: float, partons_eta, partons_phi, dr: float) -> bool:
    """Return True when every parton lies within Delta R < `dr` of the jet axis.

    Delta phi is wrapped, so partons at phi = pi - 0.1 and a jet at -pi + 0.1 are 0.2 apart.
    An empty parton list matches nothing.
    """
    partons_eta = np.asarray(partons_eta, dtype=np.float64)
    partons_phi = np.asarray(partons_phi, dtype=np.float64)
    if partons_eta.shape != partons_phi.shape:
        raise ValueError(f"partons_eta and partons_phi differ in shape: {partons_eta.shape} and {partons_phi.shape}")
    if partons_eta.size == 0:
        return False

    delta_eta = partons_eta - jet_eta
    delta_phi = wrap_phi(partons_phi - jet_phi)
    return bool(np.all(delta_eta**2 + delta_phi**2 < dr**2))


def top_decay_partons(event) -> list[tuple[np.ndarray, np.ndarray]]:
    """Find (eta, phi) of each hadronically decaying top and its three decay quarks.

    Each entry contains four partons: the last top copy before its decay, the down-type quark
    from t -> W q, and the two quarks from the last W copy. A top whose decay does not have
    this shape is left out.
    """
    hard_tops = []
    for i in range(event.size()):
        particle = event[i]
        if particle.idAbs() == 6 and particle.statusAbs() in (22, 23):
            hard_tops.append(particle)
            if len(hard_tops) == 2:
                break

    partons = []
    for hard_top in hard_tops:
        # iBotCopyId also follows copies that recoiled against a shower emission, so it
        # lands on the top that decays. iBotCopy would stop at the first emission.
        top = event[hard_top.iBotCopyId()]
        daughters = [event[j] for j in top.daughterList()]
        w_bosons = [d for d in daughters if d.idAbs() == 24]
        quarks = [d for d in daughters if 1 <= d.idAbs() <= 5]
        if len(w_bosons) != 1 or len(quarks) != 1:
            continue

        w_boson = event[w_bosons[0].iBotCopyId()]
        w_quarks = [event[j] for j in w_boson.daughterList()]
        if len(w_quarks) != 2 or not all(1 <= q.idAbs() <= 5 for q in w_quarks):
            continue

        chain = (top, quarks[0], *w_quarks)
        partons.append(
            (np.array([p.eta() for p in chain]), np.array([p.phi() for p in chain]))
        )
    return partons


@dataclass(frozen=True)
class FoundJet:
    """One selected jet: kinematics in GeV and rad, constituents as (n, 4) rows of pt, eta, phi, e."""

    pt: float
    eta: float
    phi: float
    mass: float
    constituents: np.ndarray


class JetFinder:
    """Cluster the visible final state of a Pythia event and apply the jet selection.

    With ``config.detector == "towers"`` the particles pass through a `TowerDetector`
    first. Its random numbers come from ``seed`` (None: fresh entropy, not reproducible).
    """

    def __init__(self, config: JetGenConfig, seed: int | None = None):
        self.config = config
        self.jet_definition = fastjet.JetDefinition(fastjet.antikt_algorithm, config.jet_r)
        self.detector = None
        if config.detector == "towers":
            entropy = None if seed is None else [_DETECTOR_SEED_TAG, seed]
            self.detector = TowerDetector(config.detector_config, np.random.default_rng(entropy))

    def visible_particles(self, event) -> list:
        """Return PseudoJets of the final-state particles inside the |eta| acceptance.

        `isVisible` drops neutrinos (PDG ids 12, 14, 16) and invisible BSM particles. With
        a detector, the PseudoJets are its tracks and towers instead.
        """
        if self.detector is not None:
            return self._detector_constituents(event)

        pseudojet = fastjet.PseudoJet
        abs_eta_max = self.config.particle_abs_eta_max
        particles = []
        for particle in event:  # iterating is faster than indexing the event
            if particle.isFinal() and particle.isVisible() and abs(particle.eta()) < abs_eta_max:
                particles.append(pseudojet(particle.px(), particle.py(), particle.pz(), particle.e()))
        return particles

    def _detector_constituents(self, event) -> list:
        abs_eta_max = self.config.particle_abs_eta_max
        rows = [
            (particle.px(), particle.py(), particle.pz(), particle.e(), particle.charge(), particle.idAbs())
            for particle in event
            if particle.isFinal() and particle.isVisible() and abs(particle.eta()) < abs_eta_max
        ]
        particles = np.array(rows, dtype=np.float64).reshape(-1, 6)  # (particles, px py pz e charge id)
        constituents = self.detector.simulate(*particles.T)

        pseudojet = fastjet.PseudoJet
        return [pseudojet(px, py, pz, e) for px, py, pz, e in constituents.tolist()]

    def find(self, event) -> list[FoundJet]:
        """Return the jets passing the pT and |eta| selection, hardest first."""
        config = self.config
        sequence = fastjet.ClusterSequence(self.visible_particles(event), self.jet_definition)

        jets = []
        for jet in fastjet.sorted_by_pt(sequence.inclusive_jets(config.pt_min_gev)):
            pt = jet.pt()
            if not config.pt_min_gev < pt < config.pt_max_gev:
                continue
            eta = jet.eta()
            if not abs(eta) < config.abs_eta_max:
                continue

            constituents = fastjet.sorted_by_pt(jet.constituents())[: config.max_constituents]
            rows = [(c.pt(), c.eta(), c.phi_std(), c.e()) for c in constituents]
            jets.append(FoundJet(pt, eta, jet.phi_std(), jet.m(), np.array(rows, dtype=np.float64)))
        return jets


def generate_class_jets(
    label: int,
    n_jets: int,
    pythia_seed: int,
    config: JetGenConfig,
    on_jets: Callable[[int], None] | None = None,
) -> tuple[JetBatch, ClassStats]:
    """Generate exactly `n_jets` jets of one class with one Pythia instance.

    Jets of an event are taken hardest first, and the last event contributes only as many
    as the quota still needs. `on_jets` is called with the number of jets each event added.
    Raises `RuntimeError` after `config.max_consecutive_failures` failed events in a row or
    `MAX_EVENTS_WITHOUT_JET` events in a row without a selected jet.
    """
    pythia = make_pythia(label, pythia_seed, config)
    finder = JetFinder(config, seed=pythia_seed)
    class_name = format_class(label)

    jets: list[FoundJet] = []
    n_events = 0
    n_failed = 0
    consecutive_failures = 0
    events_without_jet = 0
    while len(jets) < n_jets:
        if not pythia.next():
            n_failed += 1
            consecutive_failures += 1
            if consecutive_failures >= config.max_consecutive_failures:
                raise RuntimeError(
                    f"Pythia failed {consecutive_failures} {class_name} events in a row "
                    f"(seed {pythia_seed}); check the settings"
                )
            continue
        consecutive_failures = 0
        n_events += 1

        found = finder.find(pythia.event)
        if label == TOP_LABEL and found:
            partons = top_decay_partons(pythia.event)
            found = [
                jet
                for jet in found
                if any(is_truth_matched(jet.eta, jet.phi, eta, phi, config.match_dr) for eta, phi in partons)
            ]

        if not found:
            events_without_jet += 1
            if events_without_jet >= MAX_EVENTS_WITHOUT_JET:
                truth_match = (
                    f", and that the truth-match radius --match-dr {config.match_dr} can contain the top decay"
                    if label == TOP_LABEL
                    else ""
                )
                raise RuntimeError(
                    f"no {class_name} jet passed the selection in {events_without_jet} events in a row. "
                    f"Check that the pT-hat window {config.pthat_min_gev}-{config.pthat_max_gev} GeV "
                    f"covers the jet pT window {config.pt_min_gev}-{config.pt_max_gev} GeV{truth_match}"
                )
            continue
        events_without_jet = 0

        kept = found[: n_jets - len(jets)]
        jets.extend(kept)
        if on_jets is not None:
            on_jets(len(kept))

    if n_failed:
        logger.debug("skipped %d failed %s events (seed %d)", n_failed, class_name, pythia_seed)
    stats = ClassStats(label=label, n_jets=len(jets), n_events=n_events, n_failed_events=n_failed)
    return _to_batch(jets, label), stats


def _to_batch(jets: list[FoundJet], label: int) -> JetBatch:
    counts = np.array([len(jet.constituents) for jet in jets], dtype=np.int64)
    if jets:
        constituents = np.concatenate([jet.constituents for jet in jets])  # (sum of counts, 4)
    else:
        constituents = np.empty((0, 4))

    return JetBatch.from_columns(
        jet_pt=np.array([jet.pt for jet in jets]),
        jet_eta=np.array([jet.eta for jet in jets]),
        jet_phi=np.array([jet.phi for jet in jets]),
        jet_mass=np.array([jet.mass for jet in jets]),
        label=np.full(len(jets), label),
        counts=counts,
        part_pt=constituents[:, 0],
        part_eta=constituents[:, 1],
        part_phi=constituents[:, 2],
        part_e=constituents[:, 3],
    )


def format_class(label: int) -> str:
    """Return the class name used in messages for a label."""
    return {TOP_LABEL: "top", QCD_LABEL: "QCD"}.get(label, f"label {label}")

