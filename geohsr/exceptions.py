"""Exception hierarchy. Every message says what went wrong *and* how to fix it."""

from __future__ import annotations


class GeoHSRError(Exception):
    """Base class for all user-facing geohsr errors (the CLI prints them in one line, exit 2)."""


class InputError(GeoHSRError):
    """The input raster or data set cannot be used as given (bands, dtype, CRS, corrupt file)."""


class ModelError(GeoHSRError):
    """Unknown model name, bad configuration, or a weights file that does not fit."""


class WeightsError(ModelError):
    """A weights file is missing, corrupt, or made for another model."""


class OutputError(GeoHSRError):
    """The output cannot be written (exists already, unsupported format, interrupted write)."""


class TrainingError(GeoHSRError):
    """Training or evaluation cannot proceed (no data, missing VGG weights, bad resume state)."""
