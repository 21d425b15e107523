"""Training and evaluation: datasets, camera simulation, degradations, losses, metrics, trainer.

Import the submodules you need (``geohsr.training.trainer``, ``geohsr.training.metrics`` ...);
this package import itself is light.
"""
