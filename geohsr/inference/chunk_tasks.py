"""One chunk of a scene written straight into a shared Zarr ``.partial``, from any process.

:func:`write_chunk` is what a dask worker runs for a distributed ``geohsr reconstruct``
(:mod:`geohsr.batch.scene_chunks`): it opens the input itself, predicts the windows touching
its chunk with the process's cached model, streams the blended rows into the store and
records the chunk as done (:mod:`geohsr.io.zarr_chunks`). Everything it needs travels in
a small picklable :class:`ChunkJob`: the input path, the settings, the resolved input
scaling, and the model's weights name or path — never a live model, lock or file handle.
Memory: the chunk's width times the window height (blocks stream inside the chunk), never
the scene.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio

from geohsr.inference.blocks import dataarray_reader
from geohsr.inference.chunked import SceneGeometry, chunk_blocks
from geohsr.inference.model_cache import PredictorSpec, cached_predictor
from geohsr.inference.options import ReconstructOptions
from geohsr.inference.write_behind import WriteBehind
from geohsr.io.encoding import CubeEncoding
from geohsr.io.read import InputScaling, open_raster, prepare_rgb
from geohsr.io.zarr_chunks import ZarrChunkWriter
from geohsr.io.zarr_writer import chunk_side
from geohsr.tiling.chunks import Chunk, windows_touching

#: GDAL block cache of a chunk task (MB)
TASK_GDAL_CACHE_MB = 128


@dataclass(frozen=True)
class ChunkJob:
    """What every chunk task of one scene shares (picklable, a few kB).

    src: the input's absolute path (as the workers see it); scaling: the input scaling the
    client resolved (so a ``--stretch`` is not recomputed per task); partial: the Zarr
    store being written; fingerprint: its settings fingerprint.
    """

    src: str
    options: ReconstructOptions
    scaling: InputScaling
    geometry: SceneGeometry
    partial: str
    fingerprint: str
    model: PredictorSpec

    @classmethod
    def for_scene(cls, scene: Any, model: PredictorSpec) -> ChunkJob:
        """The job of a :class:`~geohsr.inference.scene.PreparedScene` whose writer is a
        Zarr store, with ``model`` loaded by the tasks."""
        return cls(
            src=scene.source_key,
            options=scene.options,
            scaling=scene.scaling,
            geometry=scene.geometry,
            partial=str(scene.writer.partial),
            fingerprint=scene.writer.fingerprint,
            model=model,
        )


@dataclass(frozen=True)
class ChunkRecord:
    """What a chunk task reports: windows predicted, pixels stored, seconds, the largest
    re-rendering error of its pixels (known camera only) and where it ran."""

    chunk: Chunk
    n_windows: int
    pixels: int
    seconds: float
    rerender_error: float | None
    worker: str = ""


def open_prepared_input(job: ChunkJob):
    """The prepared ``(3, H, W)`` input of ``job`` (lazy), as the client prepared it."""
    options = job.options
    side = chunk_side(options.tile - options.overlap)
    raw = open_raster(job.src, chunks={"band": -1, "y": side, "x": side}, warp=options.warp)
    rgb, _ = prepare_rgb(
        raw,
        bands=options.bands,
        nodata=options.nodata,
        encoding=options.input_encoding,
        resolved=job.scaling,
    )
    return rgb


def write_chunk(job: ChunkJob, chunk: Chunk, worker: str = "") -> ChunkRecord:
    """Reconstruct ``chunk`` of ``job``'s scene into its store and mark it done.

    Raises :class:`~geohsr.exceptions.OutputError` when the store was replaced by another
    run, :class:`~geohsr.exceptions.InputError` for an unreadable input.
    """
    started = time.perf_counter()
    encoding = CubeEncoding(job.options.dtype, job.options.precision_bits)
    writer = ZarrChunkWriter(job.partial, job.fingerprint, encoding)
    predictor = cached_predictor(job.model)
    reconstructor = job.geometry.reconstructor(predictor, chunk)
    pixels, rerender_max = 0, None
    behind = WriteBehind(Path(job.partial), resumable=True)
    try:
        with rasterio.Env(GDAL_CACHEMAX=TASK_GDAL_CACHE_MB):
            read = dataarray_reader(open_prepared_input(job))
            for result in chunk_blocks(reconstructor, read):
                behind.submit(writer.write, result.row, result.col, result.values)
                pixels += result.values.shape[1] * result.values.shape[2]
                if result.rerender_error is not None:
                    rerender_max = max(rerender_max or 0.0, result.rerender_error)
        behind.drain()
    finally:
        behind.close()
    writer.mark_done(chunk, predictor.inference)  # once every region write has returned
    windows = windows_touching(reconstructor.grid, chunk)
    return ChunkRecord(chunk, windows, pixels, time.perf_counter() - started, rerender_max, worker)
