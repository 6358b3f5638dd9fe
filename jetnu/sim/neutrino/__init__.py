"""A simplified NOvA-like detector simulation: nu_mu CC, nu_e CC, NC and cosmic-muon events.

`generate_neutrino_events` writes a balanced sample as the TTree ``events``, whose schema
is in `jetnu.data.schema`. `simulate_event` and `particle_hits` simulate single events and
particles. All settings are fields of `DetectorConfig`.

What is modelled, with the default numbers:

* Geometry (`geometry`): 448 planes of 384 cells, 15.0 m x 15.0 m x 29.6 m. A cell is
  3.9 cm wide across the plane and 6.6 cm deep along the beam (+z). Even planes hold
  vertical cells (XZ view), odd planes horizontal cells (YZ view). There are no walls or
  dead material between cells, because the detector is one homogeneous medium of
  1.0 g/cm3 with X0 = 44 cm (0.15 X0 per plane), Ec = 90 MeV and Moliere radius 10.4 cm.
* Neutrino energy: log-normal with its mode at 2 GeV and sigma(ln E) = 0.35, truncated to
  0.5-5 GeV, in place of the NuMI off-axis flux. All neutrino classes share it, so flux
  and cross-section differences between classes are ignored. Vertices are uniform in a
  fiducial volume 1 m inside the walls and the first plane, ending 12 m before the last
  plane, so that about 95 % of nu_mu CC muons stop inside at the defaults.
* Interactions (`particles`): a free nucleon at rest, with quasi-elastic (dipole Q^2) and
  inelastic (x, y sampling, W > M + m_pi) channels. The hadronic system of mass W decays
  into a nucleon and pions with near-phase-space momenta. No Fermi motion, nuclear binding,
  final-state interactions, 2p2h, coherent pions or charge conservation among pions.
* Particles (`deposits`): muons, pions and protons stepped in 1 cm steps with Bethe
  energy loss (a minimum-ionising muon loses 2.0 MeV/cm), CSDA range, Highland multiple
  scattering and Gamma straggling. Pions and protons interact hadronically (interaction
  lengths 110 and 80 cm) into a local blob plus secondaries. Electromagnetic showers have
  a Gamma longitudinal profile (t_max = ln(E / Ec) - 0.5) and a core-halo lateral profile
  scaled by the Moliere radius. Photons convert after 9/7 X0 on average, and pi0 decay at once.
  Neutrons give one recoil proton. Not modelled: muon decay and capture (no Michel
  electrons), pion decay at rest, delta rays, magnetic fields.
* Cosmic muons: one muon per event through the top face, zenith rate ~ cos^3 (intensity
  cos^2 times the projection on the face), energy ~ E^-2.7 between 1 and 100 GeV. No
  showers, multiple muons or overlays of cosmics with neutrino events.
* Readout (`readout`): Birks quenching (kB = 0.01 cm/MeV), single-exponential
  attenuation (900 cm) to the readout end (the top for vertical cells, the +x side for
  horizontal ones), 8 photoelectrons per MeV at the readout end, Poisson photo-statistics,
  8 ADC counts per photoelectron, Gaussian noise of 4 counts, a 20-count threshold and
  12-bit saturation. Events with fewer than 3 hits are drawn again. No timing, no noise
  hits in empty cells, no dead channels.

The photon-statistics, gain and threshold values are round numbers of NOvA's order of
magnitude, not calibrated values.
"""

from jetnu.sim.neutrino.batch import EventBatch, write_event_tree
from jetnu.sim.neutrino.config import DetectorConfig, config_fields
from jetnu.sim.neutrino.deposits import Deposits, simulate_particle
from jetnu.sim.neutrino.events import COSMIC, NC, NUE_CC, NUMU_CC, EventTruth, particle_hits, simulate_event
from jetnu.sim.neutrino.generation import NeutrinoGenerationSummary, generate_neutrino_events
from jetnu.sim.neutrino.readout import Hits, read_out

__all__ = [
    "COSMIC",
    "NC",
    "NUE_CC",
    "NUMU_CC",
    "DetectorConfig",
    "Deposits",
    "EventBatch",
    "EventTruth",
    "Hits",
    "NeutrinoGenerationSummary",
    "config_fields",
    "generate_neutrino_events",
    "particle_hits",
    "read_out",
    "simulate_event",
    "simulate_particle",
    "write_event_tree",
]
