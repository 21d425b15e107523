"""Plausibility of a run's input and output values, gathered while the scene streams, and
the notes a user gets when they are out of the expected range.

The model expects input scaled so that a white surface is 1 at the camera's gain, and gives
reflectance-like spectra in the same units. Values far outside that (a nodata sentinel not
declared, a wrong ``--scale``, a stretched display image, colours the named camera cannot
record) still give an output, so the run says what it saw instead of failing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: input below this (after scaling) is not noise around black: a sentinel or an offset
INPUT_LOW = -0.01
#: input above this (white = 1) suggests a missing or wrong --scale
INPUT_HIGH = 1.5
#: output spectra with a band above this are not physical reflectance
OUTPUT_HIGH = 1.2
#: share of pixels above OUTPUT_HIGH worth a note
OUTPUT_HIGH_SHARE = 1e-3
#: largest re-rendering error (input units; 1/255 = 0.0039) worth a note
RERENDER_NOTE = 0.02


class RangeWatch:
    """Running minimum and maximum (NaN ignored) of arrays seen from several threads and,
    with ``high``, how many pixels (columns of the band axis 0) have a value above it."""

    def __init__(self, high: float | None = None) -> None:
        self.high = high
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.pixels = 0
        self.above = 0
        self._lock = threading.Lock()

    def update(self, values: np.ndarray) -> None:
        """Take in ``values`` ``(bands, h, w)``."""
        if values.size == 0:
            return
        peak = np.fmax.reduce(values, axis=0)  # (h, w): largest band, NaN only if all NaN
        low = float(np.fmin.reduce(np.fmin.reduce(values, axis=0), axis=None))
        high = float(np.fmax.reduce(peak, axis=None))
        above = int((peak > self.high).sum()) if self.high is not None else 0
        pixels = int(np.isfinite(peak).sum())
        with self._lock:
            self.pixels += pixels
            self.above += above
            if np.isfinite(low):
                self.minimum = low if self.minimum is None else min(self.minimum, low)
            if np.isfinite(high):
                self.maximum = high if self.maximum is None else max(self.maximum, high)

    def state(self) -> dict[str, Any]:
        """What the watch has seen, JSON-ready (:meth:`restore` takes it back)."""
        with self._lock:
            return {
                "minimum": self.minimum,
                "maximum": self.maximum,
                "pixels": self.pixels,
                "above": self.above,
            }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` (what an interrupted run had seen)."""
        with self._lock:
            self.minimum, self.maximum = state.get("minimum"), state.get("maximum")
            self.pixels, self.above = int(state.get("pixels", 0)), int(state.get("above", 0))

    def watching(
        self, read: Callable[[slice, slice], np.ndarray]
    ) -> Callable[[slice, slice], np.ndarray]:
        """``read`` that also takes in what it returns."""

        def watched(rows: slice, cols: slice) -> np.ndarray:
            values = np.asarray(read(rows, cols))
            self.update(values)
            return values

        return watched


@dataclass(frozen=True)
class ValueReport:
    """What a run saw: input (after scaling) minimum and maximum, output maximum, output
    pixels with a band above :data:`OUTPUT_HIGH` and pixels written, and the largest
    re-rendering error with a known camera (``None``: not measured)."""

    input_min: float | None = None
    input_max: float | None = None
    output_max: float | None = None
    output_above: int = 0
    output_pixels: int = 0
    rerender_error_max: float | None = None
    #: True when the figures cover only the rows this run computed (a resume of a run
    #: that did not record what it had seen)
    partial: bool = False

    @classmethod
    def from_watches(
        cls,
        inputs: RangeWatch,
        outputs: RangeWatch,
        rerender_error_max: float | None,
        *,
        partial: bool = False,
    ) -> ValueReport:
        return cls(
            inputs.minimum,
            inputs.maximum,
            outputs.maximum,
            outputs.above,
            outputs.pixels,
            rerender_error_max,
            partial,
        )


def value_notes(report: ValueReport, camera: str | None = None) -> list[str]:
    """One-line notes (without the ``note:`` prefix) on values out of the expected range;
    ``camera``: the name of the camera the run was told (``--camera``)."""
    notes = []
    if report.input_min is not None and report.input_min < INPUT_LOW:
        notes.append(
            f"the input goes down to {report.input_min:.6g} after scaling and the model reads "
            f"values below 0 as 0; if that is a nodata value, pass --nodata "
            f"{report.input_min:.6g} (in the file's units)"
        )
    if report.input_max is not None and report.input_max > INPUT_HIGH:
        notes.append(
            f"the input reaches {report.input_max:.4g} after scaling, where the model expects "
            "white at 1; check --scale (raw values are divided by it) or use --stretch"
        )
    share = report.output_above / max(report.output_pixels, 1)
    if share > OUTPUT_HIGH_SHARE and report.output_max is not None:
        where = " of the rows this run computed" if report.partial else ""
        notes.append(
            f"{report.output_above} pixels{where} ({share:.1%}) have a band above "
            f"{OUTPUT_HIGH:g} "
            f"(up to {report.output_max:.2f}), which reflectance cannot be: the input is "
            "probably not at a fixed camera gain (a stretched or tone-mapped image?), so "
            "those spectra are unreliable"
        )
    if report.rerender_error_max is not None and report.rerender_error_max > RERENDER_NOTE:
        told = f"--camera {camera}" if camera else "the camera given"
        notes.append(
            f"with {told}, some pixels could not be rendered back to their RGB (largest "
            f"error {report.rerender_error_max:.3f}; 1/255 = 0.0039): their colours are "
            "outside what that camera records from non-negative spectra. Is it the camera "
            "that took the image?"
        )
    return notes
