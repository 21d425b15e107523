"""Feather weights and the streaming blend: normalisation, constant and smooth models,
independence of the processing order."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geohsr.tiling import blend_block, feather_profile, feather_weights, make_grid, make_plan
from geohsr.tiling.feather import DEFAULT_FLOOR


def stream_blend(grid, windows_per_block, predict, weights, channels, executor=None):
    """Run blend_block over the whole plan; ``predict(row, col) -> (C, h, w)``."""
    plan = make_plan(grid, windows_per_block)
    out = np.full((channels, grid.height, grid.width), -1.0, np.float32)
    carries = [None] * len(plan.blocks)
    for band in plan.bands:
        pending = None
        for j, block in enumerate(plan.blocks):
            windows = [(r, c) for c in block.starts for r in band.starts]
            preds = np.stack([predict(r, c) for r, c in windows]).astype(np.float32)
            result = blend_block(
                band,
                block,
                windows,
                preds,
                weights,
                pending=pending,
                carry=carries[j],
                executor=executor,
            )
            out[:, band.begin : band.final_end, block.begin : block.final_end] = result.values
            pending, carries[j] = result.pending, result.carry
        assert pending is None
    assert all(c is None for c in carries)
    return out


def global_blend(grid, predict, weights, channels, order):
    """Reference: accumulate all windows over the whole scene, in ``order``."""
    wh, ww = weights.shape
    num = np.zeros((channels, grid.height, grid.width))
    den = np.zeros((grid.height, grid.width))
    windows = list(grid.windows())
    for k in order:
        r, c = windows[k]
        num[:, r : r + wh, c : c + ww] += weights * predict(r, c)
        den[r : r + wh, c : c + ww] += weights
    return num / den, den


@st.composite
def grids(draw):
    tile = draw(st.integers(8, 40))
    overlap = draw(st.integers(0, tile - 1))
    return make_grid(draw(st.integers(1, 120)), draw(st.integers(1, 120)), tile, overlap)


@settings(deadline=None)
@given(st.integers(1, 300), st.integers(0, 200))
def test_profile_is_positive_symmetric_and_at_most_one(length, ramp):
    p = feather_profile(length, ramp)
    assert p.shape == (length,)
    assert np.all(p > DEFAULT_FLOOR / 2) and np.all(p <= 1)
    np.testing.assert_allclose(p, p[::-1])


@settings(deadline=None)
@given(st.integers(1, 64))
def test_complementary_ramps_cross_fade_to_one(ramp):
    """Two windows overlapping by exactly ``ramp`` pixels: weights add to 1 (+ floor)."""
    length = 4 * ramp
    p = feather_profile(length, ramp)
    fade_out, fade_in = p[-ramp:], p[:ramp]
    np.testing.assert_allclose(fade_out + fade_in, 1 + DEFAULT_FLOOR, atol=1e-12)


@settings(deadline=None)
@given(grids())
def test_normalised_weights_sum_to_one_everywhere(grid):
    weights = feather_weights(grid.window_height, grid.window_width, grid.overlap)
    _, den = global_blend(grid, lambda r, c: 0.0, weights, 1, range(grid.n_windows))
    assert den.min() >= DEFAULT_FLOOR**2 * 0.99  # every pixel covered with positive weight
    normalised = np.zeros_like(den)
    for r, c in grid.windows():
        normalised[r : r + grid.window_height, c : c + grid.window_width] += (
            weights / den[r : r + grid.window_height, c : c + grid.window_width]
        )
    np.testing.assert_allclose(normalised, 1.0, rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(grids(), st.integers(1, 4), st.floats(-3, 3))
def test_constant_model_gives_a_constant_cube(grid, windows_per_block, value):
    weights = feather_weights(grid.window_height, grid.window_width, grid.overlap)
    const = np.full((2, grid.window_height, grid.window_width), value, np.float32)
    out = stream_blend(grid, windows_per_block, lambda r, c: const, weights, 2)
    np.testing.assert_allclose(out, np.float32(value), rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(grids(), st.integers(1, 4), st.integers(0, 2**31))
def test_result_does_not_depend_on_processing_order(grid, windows_per_block, seed):
    """Streaming (any block width) equals a whole-scene accumulation in a random order."""
    rng = np.random.default_rng(seed)
    wh, ww = grid.window_height, grid.window_width
    preds = {w: rng.random((3, wh, ww), dtype=np.float32) for w in grid.windows()}
    weights = feather_weights(wh, ww, grid.overlap)
    out = stream_blend(grid, windows_per_block, lambda r, c: preds[r, c], weights, 3)
    reference, _ = global_blend(
        grid, lambda r, c: preds[r, c], weights, 3, rng.permutation(grid.n_windows)
    )
    np.testing.assert_allclose(out, reference, rtol=2e-5, atol=2e-6)


@settings(deadline=None, max_examples=30)
@given(grids(), st.integers(1, 4), st.integers(1, 8))
def test_channel_groups_in_threads_give_the_same_bits(grid, windows_per_block, workers):
    rng = np.random.default_rng(0)
    wh, ww = grid.window_height, grid.window_width
    preds = {w: rng.random((31, wh, ww), dtype=np.float32) for w in grid.windows()}
    weights = feather_weights(wh, ww, grid.overlap)
    serial = stream_blend(grid, windows_per_block, lambda r, c: preds[r, c], weights, 31)
    with ThreadPoolExecutor(workers) as pool:
        threaded = stream_blend(
            grid, windows_per_block, lambda r, c: preds[r, c], weights, 31, executor=pool
        )
    np.testing.assert_array_equal(threaded, serial)


def smooth_position_model(grid, artefact):
    """Prediction = smooth function of scene position + ``artefact`` x a function of the
    position inside the window (what a CNN does near window edges)."""
    wh, ww = grid.window_height, grid.window_width
    local = np.add.outer(np.linspace(-1, 1, wh), np.linspace(-1, 1, ww)) ** 2  # (wh, ww)

    def predict(r, c):
        y, x = np.mgrid[r : r + wh, c : c + ww]
        smooth = np.sin(y / 37.0) + np.cos(x / 23.0)
        return (smooth + artefact * local)[None]

    return predict


def max_jump(cube):
    return max(np.abs(np.diff(cube, axis=1)).max(), np.abs(np.diff(cube, axis=2)).max())


def test_smooth_model_gives_no_seam():
    """Bound: the smooth part moves < 1/23 per pixel; the feathered artefact (size 0.2,
    local range 4) changes by at most 0.2 * 4 * pi / (2 * overlap) + 0.2 * 8 / tile per
    pixel. Without feathering, the window borders show jumps of the artefact's size."""
    grid = make_grid(260, 230, 96, 32)
    predict = smooth_position_model(grid, artefact=0.2)
    bound = 1 / 23 + 0.2 * 4 * np.pi / (2 * 32) + 0.2 * 8 / 96
    feathered = stream_blend(grid, 2, predict, feather_weights(96, 96, 32), 1)
    assert max_jump(feathered) < bound
    hard = stream_blend(grid, 2, predict, np.ones((96, 96), np.float32), 1)
    assert max_jump(hard) > 2 * bound  # the test can fail: hard tiling leaves seams


def test_blend_block_rejects_mismatched_inputs():
    grid = make_grid(50, 50, 32, 8)
    plan = make_plan(grid, 1)
    band, block = plan.bands[0], plan.blocks[0]
    weights = feather_weights(32, 32, 8)
    with pytest.raises(ValueError, match="windows but"):
        blend_block(band, block, [(0, 0)], np.zeros((2, 1, 32, 32), np.float32), weights)
    with pytest.raises(ValueError, match="outside"):
        blend_block(band, block, [(0, 24)], np.zeros((1, 1, 32, 32), np.float32), weights)


def test_skipped_windows_leave_nan():
    grid = make_grid(40, 40, 40, 0)
    plan = make_plan(grid, 1)
    out = blend_block(
        plan.bands[0],
        plan.blocks[0],
        [],
        np.zeros((0, 2, 40, 40), np.float32),
        feather_weights(40, 40, 0),
    )
    assert out.values.shape == (2, 40, 40) and np.isnan(out.values).all()
