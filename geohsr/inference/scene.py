"""Reconstruct a whole scene: read -> tile -> predict -> blend -> write, streaming.

:func:`reconstruct_scene` (files in, file out, bounded memory, resumable Zarr) and
:func:`reconstruct_dataarray` (lazy dask cube, used by the ``.hsr`` accessor) share every
step: :func:`~geohsr.io.read.prepare_rgb` for input, :class:`BlockReconstructor` for
predict + blend, :func:`cube_attrs` and :func:`~geohsr.io.cube.cube_dataarray` for metadata.
A ``runner`` (e.g. :class:`geohsr.batch.scene_chunks.ClusterChunks`) replaces the sequential
pass of :func:`reconstruct_scene` by independent chunks computed elsewhere
(:mod:`geohsr.inference.chunked`); everything around it (lock, checks, writer, publish)
stays the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import rasterio
import xarray as xr
from dask.base import tokenize

from geohsr._stops import publishing
from geohsr._version import __version__
from geohsr.exceptions import InputError, OutputError
from geohsr.inference.blocks import dataarray_reader, stream_blocks
from geohsr.inference.chunked import SceneGeometry, chunked_cube
from geohsr.inference.model_cache import LocalPredictor, PredictorSource, PredictorSpec
from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions
from geohsr.inference.predictor import Predictor
from geohsr.inference.progress import Progress, ProgressArg
from geohsr.inference.value_range import OUTPUT_HIGH, RangeWatch, ValueReport
from geohsr.inference.write_behind import WriteBehind
from geohsr.io.cog_writer import CogCubeWriter
from geohsr.io.cube import CubeGrid, camera_response_attrs, cube_dataarray, georeference_attrs
from geohsr.io.encoding import CubeEncoding
from geohsr.io.georef import file_rpcs
from geohsr.io.lock import output_lock
from geohsr.io.output import (
    check_not_input,
    check_options,
    check_output,
    is_complete_output,
    make_output_folder,
    output_errors,
    partial_path,
    remove_partials,
)
from geohsr.io.read import InputScaling, open_raster, prepare_rgb
from geohsr.io.sidecars import check_sidecars_free, write_sidecars
from geohsr.io.stac import item_path
from geohsr.io.zarr_chunks import FINGERPRINT_ATTR
from geohsr.io.zarr_gdal import check_zarr_grid, warn_if_gdal_cannot_read
from geohsr.io.zarr_writer import (
    ZarrCubeWriter,
    chunk_side,
    settings_differences,
    settings_fingerprint,
    stored_attrs,
)
from geohsr.models.residual import uses_quantization_cell
from geohsr.models.weights import file_sha256, resolve_weights
from geohsr.spectral import N_BANDS
from geohsr.tiling.chunks import ACCESSOR_CHUNK_STRIDES, default_chunk_size, rows_covered
from geohsr.tiling.feather import DEFAULT_FLOOR

__all__ = [
    "DEFAULT_WEIGHTS",
    "ReconstructOptions",
    "PreparedScene",
    "ReconstructResult",
    "is_complete_output",
    "reconstruct_dataarray",
    "reconstruct_scene",
]

#: GDAL block cache while reconstructing (MB): bounded, whatever the scene size
GDAL_CACHE_MB = 128


@dataclass(frozen=True)
class ReconstructResult:
    """Outcome of :func:`reconstruct_scene`.

    shape: ``(31, height, width)``; n_windows: windows predicted in this run; seconds: wall
    time of this run (model loading excluded); megapixels: scene size; megapixels_per_s:
    output pixels written per second in this run; crs: the output CRS (of the GCPs for a
    GCP-only input; ``None`` when the input had no georeference); resumed_from_band: first
    band written by this run; georeference: what the output carries (``affine``, ``gcps``,
    ``rpcs`` or ``none``; ``None`` when nothing was written); chunks: how many independent
    chunks a cluster run split the scene into (0: one sequential pass) and redundancy:
    the extra windows their borders cost (0.085 = 8.5 %); values: the input and output
    value ranges this run saw (on a cluster only the re-rendering error), see
    :func:`~geohsr.inference.value_range.value_notes`; already_complete: ``resume`` found
    the output finished by an earlier run of the same settings and wrote nothing.
    """

    output: Path
    shape: tuple[int, int, int]
    n_windows: int
    seconds: float
    megapixels: float
    megapixels_per_s: float
    crs: str | None
    resumed_from_band: int = 0
    georeference: str | None = None
    chunks: int = 0
    redundancy: float = 0.0
    values: ValueReport = field(default_factory=ValueReport)
    already_complete: bool = False


def cube_attrs(
    predictor: Any,
    options: ReconstructOptions,
    scaling: InputScaling,
    grid: CubeGrid,
    source: str,
) -> dict[str, Any]:
    """Provenance attributes of an output cube (flat, JSON- and GeoTIFF-tag-friendly)."""
    model = predictor.provenance()
    encoding = CubeEncoding(options.dtype, options.precision_bits)
    return {
        "title": f"hyperspectral reconstruction, {N_BANDS} bands 400-700 nm",
        "software": f"geohsr {__version__}",
        "source_file": source,
        "input_bands": scaling.bands,
        "input_mask": scaling.mask,
        "input_scaling": scaling.description,
        "input_encoding": INPUT_ENCODING_NOTES[options.input_encoding],
        "radiometric_convention": RADIOMETRIC_CONVENTION,
        "camera": _camera_note(model, scaling.step),
        **camera_response_attrs(getattr(predictor, "camera", None)),
        "model": model["model"],
        "model_config": json.dumps(model["model_config"], sort_keys=True),
        "weights": model["weights"],
        "weights_sha256": model["weights_sha256"],
        "inference": _inference_note(model),
        "tile": options.tile,
        "overlap": options.overlap,
        "windows_per_block": predictor.batch_size,
        "blend": f"raised-cosine feather over the overlap, floor {DEFAULT_FLOOR:g}",
        "encoding": encoding.description(),
        "wavelength_units": "nm",
        **georeference_attrs(grid, options.warp),
    }


#: what the cube's numbers mean (DESIGN.md §1b), written into every output
RADIOMETRIC_CONVENTION = (
    "spectra in the radiometric scale of the input RGB: rendered through the camera response "
    "normalised so that a flat reflectance-1 spectrum gives RGB (1, 1, 1), the cube reproduces "
    "the input RGB; for reflectance-calibrated RGB (0-1) the cube is reflectance"
)
INPUT_ENCODING_NOTES = {
    "linear": "linear (values proportional to radiance or reflectance, used as scaled)",
    "srgb": "srgb (the IEC 61966-2-1 sRGB transfer curve was removed after scaling)",
}


def _inference_note(model: dict[str, Any]) -> str:
    """Backend and precision, and the INT8-adapted weights when their network ran."""
    note = f"{model.get('backend', 'torch')} {model.get('precision', 'fp32')}"
    if model.get("network_weights"):
        note += (
            f" (network: INT8-adapted weights {model['network_weights']}, SHA-256 "
            f"{model['network_weights_sha256']})"
        )
    return note


def _camera_note(model: dict[str, Any], input_step: float = 0.0) -> str:
    if model["camera"] is not None:
        target = (
            "of the likeliest RGB, given the network's own rendering, within the input's "
            f"quantisation cell (+-{input_step / 2:.3g}: half a level of the integer input)"
            if input_step > 0 and uses_quantization_cell(model["model_config"])
            else "of their RGB"
        )
        return (
            f"{model['camera']} (known): classical base fitted for it; unclipped pixels "
            f"projected onto the metamer set {target} (Lin & Finlayson 2020), then clipped "
            "at 0 reflectance"
        )
    if model["camera_aware"]:
        return "unknown (generic base fitted over the training cameras; no projection)"
    return "not used by this model"


def _prepare_input(
    raw: xr.DataArray, options: ReconstructOptions
) -> tuple[xr.DataArray, InputScaling]:
    """Band selection, scaling and nodata of ``options`` applied to raw imagery; values
    are not clipped to [0, 1] yet (:func:`~geohsr.inference.blocks.stream_blocks` does,
    after the scene pass has noted what lay outside)."""
    return prepare_rgb(
        raw,
        bands=options.bands,
        scale=options.scale,
        stretch=options.stretch,
        nodata=options.nodata,
        encoding=options.input_encoding,
        clip=False,
    )


@dataclass(frozen=True)
class PreparedScene:
    """A scene ready to be computed into its (open, possibly resumed) ``writer``: what a
    ``runner`` of :func:`reconstruct_scene` receives.

    src: the input as the user gave it; rgb: the prepared input ``(3, H, W)`` (lazy);
    scaling: how raw values were scaled (stretch limits resolved); source_key: the input's
    absolute path (what resume fingerprints record)."""

    src: Path
    source_key: str
    rgb: xr.DataArray
    scaling: InputScaling
    grid: CubeGrid
    options: ReconstructOptions
    predictor: Any
    writer: ZarrCubeWriter | CogCubeWriter

    @property
    def geometry(self) -> SceneGeometry:
        return scene_geometry(self.grid, self.options, self.scaling)


#: computes a prepared scene into its writer and publishes it (the default: one sequential
#: pass in this process, :func:`_run`)
SceneRunner = Callable[[PreparedScene, ProgressArg], "ReconstructResult"]


def scene_geometry(
    grid: CubeGrid, options: ReconstructOptions, scaling: InputScaling
) -> SceneGeometry:
    """The window grid of ``options`` over ``grid`` for input scaled by ``scaling`` (its
    quantisation step goes to the model)."""
    return SceneGeometry(grid.height, grid.width, options.tile, options.overlap, scaling.step)


def reconstruct_scene(
    src: str | Path,
    dst: str | Path,
    *,
    predictor: Predictor | None = None,
    weights: str | Path = DEFAULT_WEIGHTS,
    options: ReconstructOptions | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: ProgressArg = None,
    runner: SceneRunner | None = None,
) -> ReconstructResult:
    """Reconstruct the 31-band cube of raster ``src`` into ``dst`` (``.zarr`` or ``.tif``).

    predictor: a ready :class:`Predictor` (its batch size and device win over
        ``options``); otherwise one is loaded from ``weights``.
    overwrite: replace an existing ``dst``. resume: continue an interrupted Zarr write
        (same settings) or return at once when ``dst`` is already complete.
    progress: ``True``/``False``/``None`` (bar only on a terminal) or a callable
        ``(windows_done, windows_total)``.
    runner: computes the scene into the writer instead of the sequential pass (see
        :class:`PreparedScene`); it must write every pixel and publish the writer.

    The output appears at ``dst`` only when complete and checked (written to
    ``<dst>.partial`` first). One process at a time owns ``dst``: a run that finds another
    one writing it stops at once. Raises :class:`InputError` / :class:`OutputError` with
    the fix in the message (file-system errors while writing included).
    """
    options = options or ReconstructOptions()
    src, dst = Path(src), Path(dst)
    fmt = check_options(dst, overwrite=overwrite, resume=resume)
    if fmt == "cog" and options.zarr_format != 2:
        raise OutputError(
            f"--zarr-format applies to .zarr output; {dst.name} is a GeoTIFF: drop the "
            "option or write .zarr"
        )
    check_not_input(src, dst)
    make_output_folder(dst)
    # the lock is held from the first check until publish or failure; a stop (Ctrl+C,
    # SIGTERM) while publishing waits until the sidecars are written too
    with output_lock(dst), publishing(dst):
        check_output(dst, overwrite=overwrite, resume=resume)
        chunk = chunk_side(options.tile - options.overlap)
        raw = open_raster(src, chunks={"band": -1, "y": chunk, "x": chunk}, warp=options.warp)
        rgb, scaling = _prepare_input(raw, options)
        # a .partial beside a complete output: an interrupted --overwrite, which goes on
        complete = resume and is_complete_output(dst) and not partial_path(dst).exists()
        grid = CubeGrid.from_dataarray(rgb, rpcs=None if options.warp else file_rpcs(src))
        if fmt == "zarr" and not complete:
            check_zarr_grid(grid, dst)  # before the model is loaded
        if options.sidecars:
            check_sidecars_free(dst)
        if predictor is None:
            if resume:  # before the model is loaded (an OpenVINO conversion takes a minute)
                check_same_weights(partial_path(dst) if not complete else dst, weights)
            predictor = _load_predictor(weights, options)
        attrs = cube_attrs(predictor, options, scaling, grid, str(src))  # as the user gave it
        if complete:
            settings = resume_settings(attrs, options, grid, str(src.resolve()))
            check_same_run(dst, settings, attrs)
            if options.sidecars and not item_path(dst).exists():
                write_sidecars(dst, src)
            return _already_complete(dst, rgb)
        reconstructor = scene_geometry(grid, options, scaling).reconstructor(predictor)
        with output_errors(dst, resumable=fmt == "zarr"):
            if overwrite:
                remove_partials(dst)
            writer = _make_writer(
                fmt, dst, grid, attrs, options, reconstructor, resume, str(src.resolve())
            )
        try:
            if runner is None:
                result = _run(reconstructor, rgb, writer, grid, progress)
            else:
                scene = PreparedScene(
                    src, str(src.resolve()), rgb, scaling, grid, options, predictor, writer
                )
                result = runner(scene, progress)
        except InputError as err:  # unreadable input (corrupt tiles, ...), not an interruption
            message = str(err) if str(src) in str(err) else f"{src}: {err}"
            if fmt == "cog":
                remove_partials(dst)  # a GeoTIFF cannot resume: its scratch file only blocks
            elif partial_path(dst).exists():
                message += (
                    f"; the rows finished so far stay in {partial_path(dst)} (--resume "
                    "continues once the input reads; delete it to start over)"
                )
            raise InputError(message) from err
        if options.sidecars:
            write_sidecars(result.output, src)
        if fmt == "zarr":
            warn_if_gdal_cannot_read(result.output, options.zarr_format)
        return result


def check_same_run(dst: Path, settings: dict[str, Any], attrs: dict[str, Any]) -> None:
    """A complete Zarr ``dst`` that ``resume`` would return as is must have been made from
    this input with these ``settings`` (:func:`resume_settings`; its stored fingerprint),
    else :class:`OutputError` naming the recorded settings and provenance ``attrs`` that
    differ. Cubes written before fingerprints were stored pass."""
    stored = stored_attrs(dst)
    fingerprint = stored.get(FINGERPRINT_ATTR)
    if fingerprint is not None and fingerprint != settings_fingerprint(settings):
        raise OutputError(
            f"{dst} is complete but was made from another input or with other settings"
            f"{settings_differences(stored, settings, attrs)}; pass --overwrite to replace "
            "it, or write to another path"
        )


def check_same_weights(store: Path, weights: str | Path) -> None:
    """Refuse to resume (or to return as complete) Zarr ``store`` when it was made with
    another weights file than ``weights`` (their SHA-256 differ): the check the resume
    settings make later, before the model is loaded. Stores that cannot be read, or
    that do not record it, pass (the later check decides)."""
    try:
        recorded = stored_attrs(store).get("weights_sha256")
    except Exception:  # noqa: BLE001 - no readable store: nothing to resume from
        return
    if not recorded:
        return
    given = file_sha256(resolve_weights(weights))
    if given != recorded:
        what = "is complete but was made" if store.suffix != ".partial" else "was started"
        fix = (
            "rerun with the settings it was started with to continue, or pass --overwrite "
            "to start again"
            if store.suffix == ".partial"
            else "pass --overwrite to replace it, or write to another path"
        )
        raise OutputError(
            f"{store} {what} with other weights (SHA-256 {recorded[:12]}…, given "
            f"{Path(str(weights)).name}: {given[:12]}…); {fix}"
        )


def _already_complete(dst: Path, rgb: xr.DataArray) -> ReconstructResult:
    """The result of a ``resume`` that finds ``dst`` complete: nothing left to do."""
    return ReconstructResult(
        output=dst,
        shape=(N_BANDS, *rgb.shape[1:]),
        n_windows=0,
        seconds=0.0,
        megapixels=rgb.shape[1] * rgb.shape[2] / 1e6,
        megapixels_per_s=0.0,
        crs=_crs_string(rgb),
        already_complete=True,
    )


def _load_predictor(weights: str | Path, options: ReconstructOptions) -> Predictor:
    """The predictor of ``weights`` with the device, batch size, threads and camera of
    ``options``."""
    return Predictor.from_weights(
        weights,
        device=options.device,
        batch_size=options.batch_size,
        threads=options.threads,
        camera=options.camera,
        backend=options.backend,
        precision=options.precision,
    )


def _make_writer(fmt, dst, grid, attrs, options, reconstructor, resume, source_key):
    """The Zarr or COG writer of ``dst``. ``source_key`` (the input's absolute path) goes
    into the Zarr resume settings instead of ``source_file``, so a resume from another
    folder still matches."""
    encoding = CubeEncoding(options.dtype, options.precision_bits)
    chunk = chunk_side(reconstructor.grid.stride)
    if fmt == "cog":
        return CogCubeWriter(dst, grid, attrs, encoding, chunk=chunk)
    return ZarrCubeWriter(
        dst,
        grid,
        attrs,
        encoding,
        chunk=chunk,
        zarr_format=options.zarr_format,
        settings=resume_settings(attrs, options, grid, source_key),
        resume=resume,
    )


def resume_settings(
    attrs: dict[str, Any], options: ReconstructOptions, grid: CubeGrid, source_key: str
) -> dict[str, Any]:
    """The settings a Zarr ``.partial`` is resumed with (stored in it, with their SHA-256
    fingerprint). Left out: the chunk size (values do not depend on it) and the backend and
    precision as typed (``auto`` or explicit) and the device: what they resolved to is the
    ``inference`` attribute, part of ``attrs``."""
    unrecorded = {"chunk_size", "backend", "precision", "device"}
    recorded = {k: v for k, v in options.to_dict().items() if k not in unrecorded}
    return {
        "attrs": {**attrs, "source_file": source_key},
        "options": recorded,
        "shape": [grid.height, grid.width],
    }


def _run(reconstructor, rgb, writer, grid, progress_arg) -> ReconstructResult:
    plan = reconstructor.plan
    emit_from = recorded = writer.bands_done
    if isinstance(writer, ZarrCubeWriter):  # rows that chunk tasks of a cluster run finished
        rows = rows_covered(writer.done_chunks(), grid.width)
        emit_from = max(emit_from, sum(band.final_end <= rows for band in plan.bands))
        if emit_from > writer.bands_done:
            writer.band_done(emit_from - 1)
    left = emit_from < len(plan.bands)  # False: a resumed run stopped just before publishing
    first_band = plan.first_band_touching(plan.bands[emit_from].begin) if emit_from and left else 0
    n_cols = len(reconstructor.grid.col_starts)
    done_before = sum(len(band.starts) for band in plan.bands[:emit_from]) * n_cols
    progress = Progress(progress_arg, reconstructor.grid.n_windows, done_before)
    started = time.perf_counter()
    pixels = 0
    rerender_max: float | None = None
    inputs, outputs = RangeWatch(), RangeWatch(high=OUTPUT_HIGH)
    seen = getattr(writer, "values_seen", None)
    partial_values = emit_from > 0 and not (seen and emit_from == recorded)
    if emit_from and not partial_values:  # go on from what the interrupted run had seen
        inputs.restore(seen["input"])
        outputs.restore(seen["output"])
        rerender_max = seen.get("rerender_max")
    resumable = isinstance(writer, ZarrCubeWriter)
    behind = WriteBehind(writer.path, resumable=resumable)
    read = inputs.watching(dataarray_reader(rgb))
    blocks = (
        stream_blocks(reconstructor, read, first_band=first_band, emit_from_band=emit_from)
        if left
        else ()
    )
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            for i, j, result in blocks:
                values = result.values
                behind.submit(writer.write, result.row, result.col, values)
                outputs.update(values)
                pixels += values.shape[1] * values.shape[2]
                if result.rerender_error is not None:
                    rerender_max = max(rerender_max or 0.0, result.rerender_error)
                progress.update(result.n_windows, values.shape[1] * values.shape[2])
                if j == len(plan.blocks) - 1:  # after the band's writes, in order
                    state = {"input": inputs.state(), "output": outputs.state()}
                    behind.then(writer.band_done, i, {**state, "rerender_max": rerender_max})
            behind.drain()
            with output_errors(writer.path, resumable=resumable):
                path = writer.finish(run_attrs(rerender_max), bands_total=len(plan.bands))
    finally:
        if hasattr(blocks, "close"):
            blocks.close()  # here, not when garbage-collected in its reader thread
        behind.close()
        writer.close()
        progress.close()
    seconds = time.perf_counter() - started
    return ReconstructResult(
        output=path,
        shape=(N_BANDS, grid.height, grid.width),
        n_windows=progress.done - done_before,
        seconds=seconds,
        megapixels=grid.height * grid.width / 1e6,
        megapixels_per_s=pixels / 1e6 / max(seconds, 1e-9),
        crs=_crs_string(rgb),
        resumed_from_band=emit_from,
        georeference=grid.georeference,
        values=ValueReport.from_watches(inputs, outputs, rerender_max, partial=partial_values),
    )


def run_attrs(rerender_max: float | None) -> dict[str, Any]:
    """Attributes measured while writing: the largest re-rendering error of this run's output
    when the camera is known (see :class:`~geohsr.inference.blocks.BlockResult`)."""
    if rerender_max is None:
        return {}
    return {
        "rerender_error_max": f"{rerender_max:.3g}",
        "rerender_error_note": (
            "largest |camera response x spectrum - input RGB| over the unclipped pixels and "
            "channels written by this run, in input units (1/255 = 0.0039)"
        ),
    }


def _crs_string(data: xr.DataArray) -> str | None:
    crs = data.rio.crs
    return crs.to_string() if crs is not None else None


def reconstruct_dataarray(
    data: xr.DataArray,
    *,
    predictor: Any,
    options: ReconstructOptions,
    source: str = "(in-memory DataArray)",
    model_source: PredictorSource | None = None,
) -> xr.DataArray:
    """Lazy cube ``(wavelength, y, x)`` of raw ``(band, y, x)`` imagery ``data``.

    Same input preparation, windows, per-pixel blend order and metadata as
    :func:`reconstruct_scene` with the same ``options`` and predictor, so computing it gives
    the values the CLI writes. The dask graph holds one independent task per chunk of
    ``options.chunk_size`` pixels (default: :data:`ACCESSOR_CHUNK_STRIDES` window strides):
    it runs on any scheduler. ``model_source`` is what the tasks load the model from (a
    :class:`PredictorSpec` for weights by name or path: works on dask.distributed);
    ``None``: ``predictor`` itself, usable only by schedulers in this process. ``warp``
    works on files only (see :func:`~geohsr.io.read.open_raster`).
    """
    if options.warp:
        raise InputError(
            "warp= resamples a file through GDAL's warper; for a DataArray reproject it first "
            "(rgb.rio.reproject(...)) or open the file with geohsr.io.read.open_raster(path, "
            "warp=...)"
        )
    rgb, scaling = _prepare_input(data, options)
    grid = CubeGrid.from_dataarray(rgb)
    geometry = scene_geometry(grid, options, scaling)
    if isinstance(model_source, PredictorSpec):  # workers must run what the attrs say
        model_source = replace(model_source, expected_inference=predictor.inference)
    model_source = model_source or LocalPredictor(predictor)
    chunk_size = options.chunk_size or default_chunk_size(
        grid.height,
        grid.width,
        options.tile - options.overlap,
        chunk_side(options.tile - options.overlap),
        ACCESSOR_CHUNK_STRIDES,
    )
    source_token = getattr(model_source, "token", None) or tokenize(model_source)
    token = tokenize(rgb.data, source_token, options.to_dict())
    cube = chunked_cube(  # rounded as the CLI stores values
        model_source,
        rgb,
        geometry,
        chunk_size=chunk_size,
        precision_bits=options.precision_bits,
        token=token,
    )
    return cube_dataarray(cube, grid, cube_attrs(predictor, options, scaling, grid, source))
