"""The PSIC network, its deterministic entropy coding and its weights.

Submodules import torch; this package file does not, so the torch-free registry can be
imported by fast command-line paths.
"""
