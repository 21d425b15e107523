"""Write a cube to Zarr region by region, resumably, then publish it atomically.

Layout: one variable ``reflectance`` ``(wavelength, y, x)`` with coordinates
``wavelength`` (nm), ``y``, ``x`` (north-up grids) and a CF ``spatial_ref`` grid mapping, so
``xr.open_zarr(path, decode_coords="all").rio.crs`` works (GCP-only input: ``rio.get_gcps()``);
GDAL's ``_CRS``, GeoZarr ``spatial:``/``proj:`` and band descriptions for GDAL
(:mod:`geohsr.io.zarr_gdal`); grids GDAL would misread are refused. Zarr format 2 by
default (GDAL reads it), 3 on request. The store is written at ``<path>.partial``; root attributes
record how many bands (rows of windows) are finished, so an interrupted run can resume.
:meth:`ZarrCubeWriter.finish` checks that every band was written and that the store opens
with xarray as expected (:func:`~geohsr.io.verify.verify_zarr`); only then is
``geohsr_complete`` set and the store renamed to ``<path>``.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr

from geohsr._format import setting_text
from geohsr._stops import hold_stops
from geohsr.exceptions import OutputError
from geohsr.io.cube import COMPLETE_ATTR, CUBE_VARIABLE, CubeGrid, cube_dataarray
from geohsr.io.encoding import CubeEncoding
from geohsr.io.output import partial_path, publish, remove
from geohsr.io.verify import check_bands_done, check_chunks_done, verify_zarr
from geohsr.io.zarr_chunks import (
    FINGERPRINT_ATTR,
    chunk_inference,
    done_chunks,
    remove_markers,
)
from geohsr.io.zarr_gdal import check_zarr_grid, write_band_descriptions, zarr_grid_attrs
from geohsr.io.zarr_region import open_cube_for_writing, write_region
from geohsr.spectral import N_BANDS
from geohsr.tiling.chunks import Chunk

BANDS_DONE_ATTR = "geohsr_bands_done"
#: root attribute of a ``.partial``: what the run had seen of the values when it recorded
#: its last finished band (:class:`~geohsr.inference.value_range.RangeWatch` states), so a
#: resume reports on the whole cube; removed when published
VALUES_ATTR = "geohsr_values_seen"
#: largest Zarr chunk side (pixels)
MAX_CHUNK = 512


#: bytes per Blosc block: blocks of 1 MiB (Blosc's own choice at level 1 is far smaller)
#: compressed a rounded cube 1.6x faster, decompressed it 1.7x faster and made it 2-3 %
#: smaller (throwaway codec probe on reconstructed cubes, see ``zarr_compressor``)
BLOSC_BLOCK_BYTES = 1 << 20


def zarr_compressor(zarr_format: int) -> Any:
    """Blosc ZSTD level 1 with bit shuffle in 1 MiB blocks: on a rounded float32 cube about
    as small as level 3 with byte shuffle (0.362 against 0.356 of the raw size) and 3x
    faster to write (112 against 36 MB/s on one busy core here), which keeps compression a
    small share of a reconstruction; 40 % smaller than zarr's default LZ4
    (`benchmarks/cube_size.py`). With :data:`BLOSC_BLOCK_BYTES` blocks, on one idle core:
    the example cube RGB.byte.tif 369 -> 639 MB/s, 0.283 -> 0.273 of the raw size; a
    2048² synthetic scene 510 -> 830 MB/s, 0.403 -> 0.393; decoding 686 -> 1175 MB/s.
    LZ4 would be faster still (1050-1400 MB/s) but 21 % larger on the example cube.
    GDAL's Zarr driver reads it (the block size is in each Blosc header)."""
    if zarr_format == 2:
        from numcodecs import Blosc

        return Blosc(cname="zstd", clevel=1, shuffle=Blosc.BITSHUFFLE, blocksize=BLOSC_BLOCK_BYTES)
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle", blocksize=BLOSC_BLOCK_BYTES)


#: root attribute holding the JSON of the settings the fingerprint is made of
SETTINGS_ATTR = "geohsr_resume_settings"


def settings_fingerprint(settings: dict[str, Any]) -> str:
    """SHA-256 of a run's resume ``settings`` (JSON with sorted keys; stored in the cube as
    ``FINGERPRINT_ATTR``)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def recordable_settings(settings: dict[str, Any]) -> str:
    """The JSON stored in the cube to name later what differs: the options, the size and a
    SHA-256 of the input's absolute path (the path itself, a machine path, is not kept;
    the attributes are stored anyway)."""
    record = {k: settings.get(k) for k in ("options", "shape")}
    record["input_sha256"] = _input_sha256(settings)
    return json.dumps(record, sort_keys=True)


def _input_sha256(settings: dict[str, Any]) -> str:
    source = str(settings.get("attrs", {}).get("source_file", ""))
    return hashlib.sha256(source.encode()).hexdigest()


#: provenance attributes no option sets: the model, its weights and who ran it
MODEL_ATTRS = ("weights", "weights_sha256", "inference", "software")


def settings_differences(
    stored_all: dict[str, Any], settings: dict[str, Any], attrs: dict[str, Any]
) -> str:
    """``"; it differs in what: stored -> current; ..."`` for the input file, the options,
    the size and the model attributes that differ from those recorded in a Zarr store's
    root attributes ``stored_all`` (older stores recorded only their attributes: those are
    compared then), or a generic hint when none does. ``settings``: ``resume_settings`` of
    :mod:`geohsr.inference.scene`; ``attrs``: this run's provenance."""
    try:
        stored = json.loads(stored_all[SETTINGS_ATTR])
    except (KeyError, TypeError, ValueError):
        stored = {}
    if not stored:
        differ = _changed(stored_all, attrs, str)
    else:
        differ = []
        if stored.get("input_sha256") not in (None, _input_sha256(settings)):
            was = stored_all.get("source_file", "?")
            differ.append(f"the input file (the run read {was}, as given then)")
        differ += _changed(stored.get("options") or {}, settings.get("options") or {}, _flag)
        model = {key: attrs[key] for key in MODEL_ATTRS if key in attrs}
        differ += _changed({k: stored_all.get(k) for k in model}, model, str)
        if stored.get("shape") not in (None, settings.get("shape")):
            differ.append(f"size: {stored['shape']} -> {settings['shape']}")
    if not differ:
        return " (its input file, weights, camera, tile, dtype, ...)"
    return "; it differs in " + "; ".join(differ)


def _changed(old: dict[str, Any], new: dict[str, Any], name) -> list[str]:
    """``name(key): old -> new`` for each key both hold with different values."""
    return [
        f"{name(key)}: {setting_text(old[key])} -> {setting_text(value)}"
        for key, value in new.items()
        if key in old and json.dumps(old[key], sort_keys=True) != json.dumps(value, sort_keys=True)
    ]


def _flag(key: str) -> str:
    """``--batch-size`` for the option field ``batch_size``."""
    return "--" + key.replace("_", "-")


def stored_attrs(store: Path) -> dict:
    """The root group attributes of Zarr cube ``store`` (its provenance)."""
    return dict(zarr.open_group(str(store), mode="r", use_consolidated=False).attrs)


def chunk_side(stride: int) -> int:
    """Chunk side: the window stride (so region writes align), split to <= MAX_CHUNK."""
    parts = math.ceil(stride / MAX_CHUNK)
    return math.ceil(stride / parts)


class ZarrCubeWriter:
    """Writes ``(31, H, W)`` reflectance blocks into ``<path>.partial``.

    ``settings`` (``resume_settings`` in :mod:`geohsr.inference.scene`) are stored with
    their fingerprint: a partial store is resumed when ``resume`` is set and they match;
    with other settings :class:`OutputError` says which differ (continuing would mix two
    runs' values; starting afresh would silently drop its finished rows); a store that
    cannot be read, or without ``resume``, is started afresh. A store
    is filled either band by band in one process (:meth:`write`, :meth:`band_done`,
    :meth:`finish`) or chunk by chunk from many (:mod:`geohsr.io.zarr_chunks`,
    :meth:`finish_chunks`); a resume may switch between the two.
    """

    def __init__(
        self,
        path: Path,
        grid: CubeGrid,
        attrs: dict[str, Any],
        encoding: CubeEncoding,
        *,
        chunk: int,
        zarr_format: int = 2,
        settings: dict[str, Any],
        resume: bool = False,
    ) -> None:
        check_zarr_grid(grid, Path(path))
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.encoding = encoding
        self.grid = grid
        self.attrs = attrs
        self.attr_names = tuple(attrs)
        self.fingerprint = settings_fingerprint(settings)
        self.chunk = chunk
        resumed = self._resumable_attrs(settings) if resume else None
        self.bands_done = int(resumed.get(BANDS_DONE_ATTR, 0)) if resumed is not None else 0
        #: what the interrupted run had seen of the values in its finished bands, or None
        self.values_seen = resumed.get(VALUES_ATTR) if resumed is not None else None
        if resumed is None:
            remove(self.partial)
            self._create(grid, attrs, chunk, zarr_format, settings)
        self.group, self.array = open_cube_for_writing(self.partial)

    def _resumable_attrs(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The root attributes of a ``.partial`` made with the same ``settings``; None when
        there is none or it cannot be read. Raises :class:`OutputError` when its recorded
        settings differ."""
        try:
            group = zarr.open_group(str(self.partial), mode="r", use_consolidated=False)
            attrs = dict(group.attrs)
            if CUBE_VARIABLE not in group:
                return None
        except (
            FileNotFoundError,
            ValueError,
            KeyError,
            json.JSONDecodeError,
            zarr.errors.GroupNotFoundError,
        ):
            return None
        stored = attrs.get(FINGERPRINT_ATTR)
        if stored is not None and stored != self.fingerprint:
            raise OutputError(
                f"{self.partial} was started from another input or with other settings"
                f"{settings_differences(attrs, settings, self.attrs)}; rerun with the "
                "settings it was started with to continue, or pass --overwrite to start again"
            )
        return attrs if stored == self.fingerprint else None

    def done_chunks(self) -> set[Chunk]:
        """Chunks recorded as written by tasks (:mod:`geohsr.io.zarr_chunks`)."""
        return done_chunks(self.partial)

    def _create(
        self,
        grid: CubeGrid,
        attrs: dict[str, Any],
        chunk: int,
        zarr_format: int,
        settings: dict[str, Any],
    ) -> None:
        lazy = da.zeros(
            (N_BANDS, grid.height, grid.width), dtype=np.float32, chunks=(N_BANDS, chunk, chunk)
        )
        cube = cube_dataarray(lazy, grid, zarr_grid_attrs(grid))
        dataset = cube.to_dataset()
        dataset.attrs = {
            **attrs,
            FINGERPRINT_ATTR: self.fingerprint,
            SETTINGS_ATTR: recordable_settings(settings),
            BANDS_DONE_ATTR: 0,
            COMPLETE_ATTR: False,
        }
        encoding = {
            CUBE_VARIABLE: {
                **cube.encoding,  # keeps rioxarray's grid_mapping
                "dtype": self.encoding.dtype,
                "chunks": (N_BANDS, chunk, chunk),
                "compressors": (zarr_compressor(zarr_format),),
                **self.encoding.cf_attrs(),
            }
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr v3 "consolidated metadata" spec warnings
            dataset.to_zarr(
                self.partial,
                mode="w",
                compute=False,
                zarr_format=zarr_format,
                consolidated=False,
                encoding=encoding,
            )
        write_band_descriptions(self.partial, zarr_format)

    def write(self, row: int, col: int, values: np.ndarray) -> None:
        """Store reflectance ``values`` ``(31, h, w)`` float32 at pixel ``(row, col)``."""
        write_region(self.array, self.encoding, row, col, values)

    def band_done(self, band_index: int, values_seen: dict[str, Any] | None = None) -> None:
        """Record that every row up to band ``band_index`` is written (and, in the same
        attribute write, ``values_seen`` up to there: :attr:`values_seen` on resume)."""
        self.bands_done = band_index + 1
        update: dict[str, Any] = {BANDS_DONE_ATTR: self.bands_done}
        if values_seen is not None:
            update[VALUES_ATTR] = values_seen
        self.group.attrs.update(update)

    def finish(self, extra_attrs: dict[str, Any] | None = None, *, bands_total: int) -> Path:
        """Add ``extra_attrs`` (known only at the end), check that all ``bands_total`` bands
        are written and that the store reads back as a whole cube, then mark it complete and
        rename ``<path>.partial`` -> ``<path>``. Raises :class:`OutputError` (the
        ``.partial`` stays) when a check fails."""
        check_bands_done(self.partial, self.bands_done, bands_total, resumable=True)
        return self._publish(extra_attrs)

    def finish_chunks(
        self,
        extra_attrs: dict[str, Any] | None,
        chunks: Sequence[Chunk],
        *,
        rows_done: int = 0,
        bands_total: int,
    ) -> Path:
        """:meth:`finish` for a store written chunk by chunk: every one of ``chunks`` must be
        recorded as done, or lie in the first ``rows_done`` rows (written band by band by
        an earlier run). The store then says all ``bands_total`` bands are done, as one
        written band by band does."""
        done = self.done_chunks()
        missing = [chunk for chunk in chunks if chunk not in done and chunk.row1 > rows_done]
        check_chunks_done(self.partial, len(chunks) - len(missing), len(chunks))
        ran = chunk_inference(self.partial)
        if len(ran) > 1:
            raise OutputError(
                f"the chunks of {self.partial} were computed with different inference "
                f"settings ({', '.join(sorted(ran))}: workers that differ, or a resume on "
                "other machines); start again with --overwrite and explicit --backend and "
                "--precision that every worker runs"
            )
        attrs = {**(extra_attrs or {}), **({"inference": ran.pop()} if ran else {})}
        self.band_done(bands_total - 1)
        return self._publish(attrs)

    def _publish(self, extra_attrs: dict[str, Any] | None) -> Path:
        hold_stops()  # a stop now waits until the store is published (a few metadata writes)
        self.group.attrs.update(extra_attrs or {})
        self._consolidate()
        verify_zarr(self.partial, self.grid, self.encoding.dtype, self.attr_names)
        remove_markers(self.partial)
        self.group.attrs.pop(VALUES_ATTR, None)  # a record of the run, not of the cube
        self.group.attrs[COMPLETE_ATTR] = True
        try:
            self._consolidate()
        except BaseException:
            with suppress(Exception):  # no complete-looking .partial, if the disk allows
                self.group.attrs[COMPLETE_ATTR] = False
            raise
        publish(self.partial, self.path)
        return self.path

    def _consolidate(self) -> None:
        """Write the consolidated metadata (what xarray and GDAL read first)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(str(self.partial))

    def close(self) -> None:
        """Nothing to release: every region write is already on disk."""
