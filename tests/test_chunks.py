"""Independent chunks: geometry, redundancy, and chunked == streaming bit for bit (pure
numpy predictor here; torch models and dask clusters in test_scene_cluster.py)."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geohsr.inference.blocks import BlockReconstructor, array_reader, stream_blocks
from geohsr.inference.chunked import SceneGeometry, chunk_values
from geohsr.tiling import make_grid, make_plan
from geohsr.tiling.chunks import (
    DEFAULT_CHUNK_STRIDES,
    Chunk,
    chunk_plan,
    default_chunk_size,
    halo,
    make_chunks,
    redundancy,
    round_up,
)


class NumpyPredictor:
    """A fixed per-pixel linear map plus a window-position artefact, computed window by
    window (so a window's output never depends on its batch mates)."""

    def __init__(self, batch_size: int = 2) -> None:
        self.batch_size = batch_size
        self.mix = np.random.default_rng(0).random((31, 3)).astype(np.float32)

    def predict(self, batch: np.ndarray, **kwargs) -> np.ndarray:
        height, width = batch.shape[-2:]
        y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
        x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
        artefact = 0.1 * (y**2 + x**2)
        out = [np.tensordot(self.mix, window, axes=1) + artefact for window in batch]
        return np.stack(out).astype(np.float32)


def streamed(predictor, rgb: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """The whole scene in one sequential pass (what `geohsr reconstruct` computes)."""
    _, height, width = rgb.shape
    reconstructor = BlockReconstructor(predictor, height, width, tile, overlap)
    out = np.full((31, height, width), -1.0, np.float32)
    for _, _, result in stream_blocks(reconstructor, array_reader(rgb, (0, 0))):
        h, w = result.values.shape[1:]
        out[:, result.row : result.row + h, result.col : result.col + w] = result.values
    return out


def chunked(predictor, rgb: np.ndarray, tile: int, overlap: int, size: int) -> np.ndarray:
    """Every chunk on its own, from its halo only."""
    _, height, width = rgb.shape
    geometry = SceneGeometry(height, width, tile, overlap)
    grid = make_grid(height, width, tile, overlap)
    out = np.full((31, height, width), -1.0, np.float32)
    for chunk in make_chunks(height, width, size):
        region = halo(grid, chunk)
        halo_rgb = rgb[:, region.rows, region.cols].copy()  # nothing outside the halo
        out[:, chunk.rows, chunk.cols] = chunk_values(
            predictor, geometry, chunk, halo_rgb, (region.row0, region.col0)
        )
    return out


@st.composite
def scenes(draw):
    tile = draw(st.integers(16, 40))
    overlap = draw(st.integers(0, tile // 2))
    height, width = draw(st.integers(1, 110)), draw(st.integers(1, 110))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    rgb = rng.random((3, height, width), dtype=np.float32)
    if draw(st.booleans()):  # a nodata rectangle, possibly covering whole windows
        r0, c0 = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
        rgb[:, r0 : r0 + draw(st.integers(1, 60)), c0 : c0 + draw(st.integers(1, 60))] = np.nan
    return rgb, tile, overlap, draw(st.integers(7, 120)), draw(st.integers(1, 3))


@settings(deadline=None, max_examples=40)
@given(scenes())
def test_chunked_equals_streaming_bit_for_bit(case):
    """Odd sizes, chunk sizes that do not divide the scene (or exceed it), nodata,
    scenes smaller than one window, any batch size."""
    rgb, tile, overlap, size, batch_size = case
    predictor = NumpyPredictor(batch_size)
    expected = streamed(predictor, rgb, tile, overlap)
    assert (expected != -1).all()  # every pixel written (NaN at nodata)
    np.testing.assert_array_equal(chunked(predictor, rgb, tile, overlap, size), expected)


class GpuLikePredictor(NumpyPredictor):
    """Says its model is on a GPU: the scene pass then predicts in a thread one block
    ahead and blends channel groups in parallel threads."""

    device = SimpleNamespace(type="cuda")


@settings(deadline=None, max_examples=25)
@given(scenes())
def test_concurrent_pass_equals_sequential_bit_for_bit(case):
    rgb, tile, overlap, _, batch_size = case
    _, height, width = rgb.shape
    assert BlockReconstructor(GpuLikePredictor(batch_size), height, width, tile, overlap).concurrent
    expected = streamed(NumpyPredictor(batch_size), rgb, tile, overlap)
    got = streamed(GpuLikePredictor(batch_size), rgb, tile, overlap)
    np.testing.assert_array_equal(got, expected)


def test_a_failing_model_call_stops_the_concurrent_pass():
    class Failing(GpuLikePredictor):
        calls = 0

        def predict(self, batch, **kwargs):
            Failing.calls += 1
            if Failing.calls == 3:
                raise RuntimeError("out of GPU memory")
            return super().predict(batch, **kwargs)

    rgb = np.random.default_rng(0).random((3, 90, 90), dtype=np.float32)
    with pytest.raises(RuntimeError, match="out of GPU memory"):
        streamed(Failing(1), rgb, 32, 8)


@settings(deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(10, 200))
def test_chunks_tile_the_scene(height, width, size):
    covered = np.zeros((height, width), int)
    for chunk in make_chunks(height, width, size):
        assert chunk.shape[0] >= 1 and chunk.shape[1] >= 1
        covered[chunk.rows, chunk.cols] += 1
        assert Chunk.from_key(chunk.key) == chunk
    assert (covered == 1).all()


@settings(deadline=None)
@given(
    st.integers(1, 300),
    st.integers(1, 300),
    st.integers(16, 64),
    st.integers(10, 200),
    st.integers(1, 4),
)
def test_chunk_plan_finishes_every_chunk_pixel_once_from_its_halo(
    height, width, tile, size, per_block
):
    overlap = tile // 4
    grid = make_grid(height, width, tile, overlap)
    plan = make_plan(grid, per_block)
    for chunk in make_chunks(height, width, size):
        sub = chunk_plan(plan, chunk, per_block)
        region = halo(grid, chunk)
        assert region.contains(chunk)
        rows = [r for band in sub.bands for r in range(band.begin, band.final_end)]
        cols = [c for block in sub.blocks for c in range(block.begin, block.final_end)]
        assert rows == list(range(region.row0, region.row1))  # bands finish the halo once
        assert cols == list(range(region.col0, region.col1))
        for band in sub.bands:  # a band's window rows are the global band's (same order)
            assert any(set(band.starts) <= set(g.starts) for g in plan.bands)


def windows_per_chunk_by_overlap(grid, chunks) -> int:
    """Independent count: a window is predicted by every chunk its pixels intersect."""
    count = 0
    for row, col in grid.windows():
        for chunk in chunks:
            rows = min(row + grid.window_height, chunk.row1) - max(row, chunk.row0)
            cols = min(col + grid.window_width, chunk.col1) - max(col, chunk.col0)
            count += rows > 0 and cols > 0
    return count


@pytest.mark.parametrize(
    "height, width, tile, overlap, size",
    [(4096, 4096, 512, 64, 2240), (1000, 777, 64, 16, 96), (300, 300, 64, 16, 1000)],
)
def test_redundancy_matches_the_geometry(height, width, tile, overlap, size):
    grid = make_grid(height, width, tile, overlap)
    chunks = make_chunks(height, width, size)
    counted = windows_per_chunk_by_overlap(grid, chunks)
    assert redundancy(grid, chunks) == pytest.approx(counted / grid.n_windows - 1)


def test_default_chunk_keeps_redundancy_under_ten_percent_on_big_scenes():
    """Chunks of n strides aligned to the window lattice touch n + 1 windows per axis, so
    the extra work is at most (1 + 1/n)^2 - 1 = 8.5 % for n = 24, whatever the size (a
    last sliver of a chunk would add windows of its own: it joins the chunk before)."""
    tile, overlap = 512, 64
    stride = tile - overlap
    bound = (1 + 1 / DEFAULT_CHUNK_STRIDES) ** 2 - 1
    for height, width in [(30_000, 31_234), (32_472, 3 * 10_752 + 100), (100_000, 258_049)]:
        grid = make_grid(height, width, tile, overlap)
        size = default_chunk_size(height, width, stride, 448)
        assert size == DEFAULT_CHUNK_STRIDES * stride == 10752
        assert redundancy(grid, make_chunks(height, width, size)) <= bound < 0.10
    side = 9500  # a scene under two chunks is split in two: still <= 10 % from 9500 px on
    grid = make_grid(side, side, tile, overlap)
    size = default_chunk_size(side, side, stride, 448)
    assert redundancy(grid, make_chunks(side, side, size)) <= 0.10


def test_small_scenes_still_split_and_chunks_align_to_zarr_chunks():
    assert default_chunk_size(4096, 4096, 448, 448) == 2240
    assert len(make_chunks(4096, 4096, 2240)) == 4  # 2 x 2 chunks of 25 windows each
    assert default_chunk_size(100, 80, 48, 48) == 96
    assert round_up(100, 48) == 144 and default_chunk_size(1, 1, 48, 48) == 48


def test_a_last_sliver_joins_the_chunk_before():
    from geohsr.tiling.chunks import chunk_edges

    assert chunk_edges(250, 96) == (0, 96, 192, 250)  # 58 px: at least half a chunk
    assert chunk_edges(230, 96) == (0, 96, 230)  # 38 px: joins
    assert chunk_edges(50, 96) == (0, 50) and chunk_edges(96, 96) == (0, 96)


def test_model_calls_keep_one_shape_class():
    from geohsr.inference.predictor import call_sizes

    assert call_sizes(4, 2) == [2, 2] and call_sizes(5, 2) == [2, 3]  # no call of one
    assert call_sizes(7, 4) == [4, 3] and call_sizes(1, 2) == [1]  # a lone one: the caller's
    assert call_sizes(3, 8, "cuda") == [8] and call_sizes(9, 8, "cuda") == [8, 8]  # padded


def test_rows_covered_counts_full_rows_of_chunks_from_the_top():
    from geohsr.tiling.chunks import rows_covered

    chunks = make_chunks(100, 90, 40)  # rows 0-40, 40-80, 80-100; cols 0-40, 40-90
    assert len(chunks) == 6 and rows_covered(chunks, 90) == 100
    assert rows_covered(chunks[:3], 90) == 40 and rows_covered(chunks[:5], 90) == 80
    assert rows_covered(chunks[1:], 90) == 0 and rows_covered([], 90) == 0
