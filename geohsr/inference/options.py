"""Settings of a scene reconstruction (no heavy imports: the CLI builds these cheaply)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from geohsr.exceptions import InputError, OutputError
from geohsr.io.encoding import DEFAULT_PRECISION_BITS
from geohsr.spectral.encoding import INPUT_ENCODINGS

#: weights used when none are given: a name in pretrained/ or a .safetensors path
DEFAULT_WEIGHTS = "mxr_unet18_rpr_cave"
#: window size (pixels) when none is given
DEFAULT_TILE = 512
#: largest default window overlap (pixels); smaller tiles get a quarter of the tile
DEFAULT_OVERLAP = 64
#: output encodings (``--dtype``)
OUTPUT_DTYPES = ("float32", "float16", "uint16")
ZARR_FORMATS = (2, 3)
#: inference backends and precisions (see geohsr.inference.backends)
BACKENDS = ("auto", "torch", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class ReconstructOptions:
    """How to reconstruct a scene.

    tile / overlap: window size and overlap in pixels (overlap ``None``:
    :func:`default_overlap` of the tile, resolved at construction). batch_size: windows per
    model call (``None``: the predictor's default). device: ``auto``, ``cpu``, ``cuda`` or
    ``cuda:N``. threads: torch CPU threads (``None``: torch's default). bands: 1-based
    red, green, blue band indexes (``None``: the file must have 3 bands). scale: divisor
    for raw values; stretch: ``(low, high)`` percentiles instead. nodata: extra raw value
    treated as missing. dtype: ``float32``, ``float16`` or ``uint16`` (reflectance x 10000,
    65535 = nodata). zarr_format: 2 (GDAL-readable) or 3. camera: the input's camera
    response (``cie1964``, a camera name or a CSV ``wavelength,r,g,b``) for camera-aware
    models, or None (unknown). input_encoding: ``linear`` (radiometric / reflectance data,
    raw camera data) or ``srgb`` (camera JPEGs, sRGB true-colour products: the sRGB curve
    is removed before the model). warp: resample the input file to a north-up grid in this
    CRS (``EPSG:32633``, WKT, PROJ, or ``gcps`` for the CRS of the input's ground control
    points) through GDAL's warper before reconstruction; None keeps the input's grid.
    precision_bits: float32 spectra are rounded to multiples of ``2**-precision_bits``
    (default 13: at most 6.1e-5 error, ~3x smaller files; 0 or None: every bit kept; see
    :mod:`geohsr.io.encoding`). The accessor returns the same rounded values.
    sidecars: write a STAC Item (``<name>.json``) and a QGIS true-colour style
    (``<name>.qml``) beside file outputs. chunk_size: side (pixels) of the independent
    chunks of a distributed run (rounded up to whole Zarr chunks) and of the accessor's
    output chunks; ``None``: :func:`~geohsr.tiling.chunks.default_chunk_size` (24 window
    strides for files, 8 for the accessor, whose chunks are held in memory). Values do not
    depend on it. backend: ``auto``, ``torch`` or ``openvino`` and precision: ``auto``,
    ``fp32``, ``bf16`` or ``fp16``: who runs the model and at which arithmetic precision
    (:mod:`geohsr.inference.backends`; resolved when the model is loaded).
    """

    tile: int = DEFAULT_TILE
    overlap: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    threads: int | None = None
    bands: tuple[int, ...] | None = None
    scale: float | None = None
    stretch: tuple[float, float] | None = None
    nodata: float | None = None
    dtype: str = "float32"
    zarr_format: int = 2
    camera: str | None = None
    input_encoding: str = "linear"
    warp: str | None = None
    precision_bits: int | None = DEFAULT_PRECISION_BITS
    sidecars: bool = True
    chunk_size: int | None = None
    backend: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision_bits == 0:
            object.__setattr__(self, "precision_bits", None)
        if self.precision_bits is not None and not 1 <= self.precision_bits <= 23:
            raise OutputError(
                f"--precision-bits must be 0 (lossless) or 1-23, got {self.precision_bits}"
            )
        if self.tile < 16:
            raise InputError(f"--tile must be at least 16 pixels, got {self.tile}")
        if self.overlap is None:
            object.__setattr__(self, "overlap", default_overlap(self.tile))
        if not 0 <= self.overlap <= self.tile // 2:
            raise InputError(
                f"--overlap must be between 0 and tile/2 = {self.tile // 2}, got {self.overlap}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        if self.dtype not in OUTPUT_DTYPES:
            raise OutputError(f"--dtype {self.dtype!r}: choose one of {', '.join(OUTPUT_DTYPES)}")
        if self.input_encoding not in INPUT_ENCODINGS:
            raise InputError(
                f"--input-encoding {self.input_encoding!r}: choose one of "
                f"{', '.join(INPUT_ENCODINGS)}"
            )
        if self.warp is not None and not self.warp.strip():
            raise InputError("--warp needs a CRS, e.g. --warp EPSG:32633, or --warp gcps")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise InputError(f"--chunk-size must be at least 1 pixel, got {self.chunk_size}")
        for name in ("backend", "precision"):  # case-insensitive, like $GEOHSR_BACKEND
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, value.strip().lower())
        if self.backend not in BACKENDS:
            raise InputError(f"--backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise InputError(
                f"--precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}"
            )
        if self.zarr_format not in ZARR_FORMATS:
            raise OutputError(f"--zarr-format must be 2 or 3, got {self.zarr_format}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready record (lists instead of tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def default_overlap(tile: int) -> int:
    """The overlap used when none is given: a quarter of ``tile``, at most
    :data:`DEFAULT_OVERLAP` (64 for the default 512-pixel tile, 4 for a 16-pixel one)."""
    return min(DEFAULT_OVERLAP, tile // 4)
