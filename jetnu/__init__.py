"""jetnu: deep-learning taggers for collider jets and neutrino detectors, from sample
generation to training, FPGA export and serving."""

__version__ = "0.1.0"
