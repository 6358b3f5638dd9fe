"""Sample generation. Top and QCD jets come from Pythia8 and FastJet (`generate_jets`).

Importing this package starts no process and no generator.
"""

from jetnu.sim.jet_batch import JetBatch, write_jet_tree
from jetnu.sim.pythia_jets import QCD_LABEL, TOP_LABEL, GenerationSummary, JetGenConfig, generate_jets, is_truth_matched

__all__ = [
    "QCD_LABEL",
    "TOP_LABEL",
    "GenerationSummary",
    "JetBatch",
    "JetGenConfig",
    "generate_jets",
    "is_truth_matched",
    "write_jet_tree",
]
