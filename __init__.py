"""ncore: an open NeuronCore-style inference accelerator generator."""

__version__ = "0.1.0"
