"""Region writes into the cube's Zarr array: pieces compressed in parallel threads give the
same array as one plain write, at any alignment with the chunks."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from geohsr.io.cube import CUBE_VARIABLE
from geohsr.io.encoding import CubeEncoding
from geohsr.io.zarr_region import open_cube_for_writing, write_region


def new_store(path, shape, chunk):
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array(
        CUBE_VARIABLE, shape=shape, chunks=(shape[0], chunk, chunk), dtype="f4",
        fill_value=float("nan"),
    )  # fmt: skip
    return path


@settings(deadline=None, max_examples=25)
@given(
    chunk=st.integers(3, 20),
    regions=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 30), st.integers(1, 50)),
        min_size=1,
        max_size=4,
    ),
)
def test_parallel_pieces_equal_one_plain_write(tmp_path_factory, chunk, regions):
    folder = tmp_path_factory.mktemp("region")
    shape = (4, 70, 90)
    encoding = CubeEncoding("float32")
    _, array = open_cube_for_writing(new_store(folder / "pieces.zarr", shape, chunk))
    plain = np.full(shape, np.nan, np.float32)
    rng = np.random.default_rng(chunk)
    for row, col, height, width in regions:
        values = rng.random((shape[0], height, width), dtype=np.float32)
        values[:, 0, 0] = np.nan
        write_region(array, encoding, row, col, values)
        plain[:, row : row + height, col : col + width] = encoding.encode(values)
    np.testing.assert_array_equal(array[...], plain)


def test_chunks_of_nodata_are_stored_as_files(tmp_path):
    path = new_store(tmp_path / "c.zarr", (2, 8, 8), 4)
    _, array = open_cube_for_writing(path)
    write_region(array, CubeEncoding("float32"), 0, 0, np.full((2, 8, 8), np.nan, np.float32))
    stored = [p.name for p in (path / CUBE_VARIABLE).iterdir() if not p.name.startswith(".")]
    assert sorted(stored) == ["0.0.0", "0.0.1", "0.1.0", "0.1.1"]


def test_writing_a_missing_store_fails_clearly(tmp_path):
    with pytest.raises((FileNotFoundError, zarr.errors.GroupNotFoundError)):
        open_cube_for_writing(tmp_path / "absent.zarr")
