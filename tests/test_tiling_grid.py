"""Window grid and processing plan: pure geometry, property tests."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geohsr.tiling import axis_starts, group_spans, make_grid, make_plan, reflect_pad

lengths = st.integers(1, 700)
tiles = st.integers(8, 160)


@st.composite
def axis_cases(draw):
    tile = draw(tiles)
    return draw(lengths), tile, draw(st.integers(0, tile - 1))


@settings(deadline=None)
@given(axis_cases())
def test_windows_cover_every_pixel_and_stay_inside(case):
    length, tile, overlap = case
    starts = axis_starts(length, tile, overlap)
    size = min(tile, length)
    covered = np.zeros(length, int)
    for start in starts:
        assert 0 <= start and start + size <= length
        covered[start : start + size] += 1
    assert covered.min() >= 1
    assert starts[0] == 0 and starts[-1] + size == length  # last window shifted inward
    steps = np.diff(starts)
    assert np.all(steps > 0) and np.all(steps <= tile - overlap)
    assert np.all(steps[:-1] == tile - overlap)  # regular except the last


def test_axis_starts_examples():
    assert axis_starts(10, 512, 64) == (0,)
    assert axis_starts(512, 512, 64) == (0,)
    assert axis_starts(1000, 512, 64) == (0, 448, 488)
    assert axis_starts(960, 512, 64) == (0, 448)


@pytest.mark.parametrize("bad", [(0, 8, 0), (10, 8, 8), (10, 8, -1), (10, 0, 0)])
def test_axis_starts_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        axis_starts(*bad)


@settings(deadline=None)
@given(axis_cases(), st.integers(1, 5))
def test_spans_partition_the_axis_and_finish_only_untouched_pixels(case, per_group):
    length, tile, overlap = case
    starts = axis_starts(length, tile, overlap)
    size = min(tile, length)
    spans = group_spans(starts, size, length, tile - overlap, per_group)
    assert [s for span in spans for s in span.starts] == list(starts)
    assert spans[0].begin == 0 and spans[-1].final_end == length
    for span, later in zip(spans, spans[1:], strict=False):
        assert span.final_end == later.begin  # finished ranges tile the axis
        assert later.starts[0] >= span.final_end  # later windows never touch finished pixels
    for span in spans:
        assert span.begin % (tile - overlap) == 0  # groups begin on the stride lattice
        assert span.end == span.starts[-1] + size
        assert span.begin <= span.final_end <= span.end


def test_short_last_stride_joins_the_previous_group():
    spans = group_spans(axis_starts(1000, 512, 64), 512, 1000, 448, 1)
    assert [s.starts for s in spans] == [(0,), (448, 488)]
    spans = group_spans(axis_starts(1408, 512, 64), 512, 1408, 448, 1)
    assert [s.starts for s in spans] == [(0,), (448,), (896,)]


def test_plan_counts_every_window_once():
    grid = make_grid(300, 250, 64, 16)
    plan = make_plan(grid, windows_per_block=3)
    windows = [
        (r, c)
        for band in plan.bands
        for block in plan.blocks
        for r in band.starts
        for c in block.starts
    ]
    assert sorted(windows) == sorted(grid.windows())
    assert plan.first_band_touching(0) == 0
    assert plan.first_band_touching(plan.bands[2].begin) == 1


@settings(deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 90), st.integers(1, 90))
def test_reflect_pad_keeps_the_window_and_reflects(h, w, extra_h, extra_w):
    window = np.random.default_rng(0).random((3, h, w))
    padded = reflect_pad(window, h + extra_h, w + extra_w)
    assert padded.shape == (3, h + extra_h, w + extra_w)
    np.testing.assert_array_equal(padded[:, :h, :w], window)
    if h > 1:
        np.testing.assert_array_equal(padded[:, h, :w], window[:, h - 2])


def test_reflect_pad_is_a_no_op_at_full_size():
    window = np.zeros((3, 8, 8))
    assert reflect_pad(window, 8, 8) is window
