"""geohsr: RGB imagery -> 31-band hyperspectral cubes (400-700 nm) with MXR-U-Nets.

Importing geohsr is light (no torch); it registers the ``.hsr`` xarray accessor.
"""

from geohsr import accessor as _accessor  # noqa: F401 - registers the .hsr accessor
from geohsr._upstream_warnings import hide_upstream_noise
from geohsr._version import __version__
from geohsr.exceptions import (
    GeoHSRError,
    InputError,
    ModelError,
    OutputError,
    TrainingError,
    WeightsError,
)

hide_upstream_noise()

__all__ = [
    "GeoHSRError",
    "InputError",
    "ModelError",
    "OutputError",
    "TrainingError",
    "WeightsError",
    "__version__",
]
