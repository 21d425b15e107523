"""synthetic-aerial scenes: measured spectra painted into seeded aerial layouts."""

import numpy as np
import pytest

from geohsr.exceptions import InputError
from geohsr.training.datasets import load_data_specs
from geohsr.training.datasets.synthetic_aerial import (
    SpectralLibrary,
    build_aerial_scene,
    water_spectrum,
)

pytest.importorskip("earthlib")


def test_scenes_are_seeded_reflectance_with_remote_sensing_materials():
    scenes = load_data_specs(["synthetic-aerial:3"])
    assert [s.name for s in scenes] == ["aerial_0000", "aerial_0001", "aerial_0002"]
    first = scenes[0].loader().cube
    again = load_data_specs(["synthetic-aerial:1"])[0].loader().cube
    np.testing.assert_array_equal(first, again)
    assert first.shape == (31, 256, 256) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1
    assert not np.array_equal(first, scenes[1].loader().cube)
    # vegetation is present: somewhere the red edge starts (700 nm well above 670 nm)
    assert (first[30] > 1.5 * first[27]).mean() > 0.05


def test_layout_paints_given_spectra_and_mixes_boundaries():
    flat = {
        name: np.array([0]) for name in ("vegetation", "soil", "dry_vegetation", "roof", "pavement")
    }
    library = SpectralLibrary(np.full((1, 31), 0.4, np.float32), flat)
    cube = build_aerial_scene(library, np.random.default_rng(0), 64)
    assert cube.shape == (31, 64, 64)
    # every spectrum is 0.4 x shading (or water): flat where not water
    flatness = cube.std(axis=0) / cube.mean(axis=0)
    assert np.median(flatness) < 1e-5


def test_water_is_dark_and_absorbs_red():
    spectrum = water_spectrum(np.random.default_rng(1))
    assert spectrum.max() <= 0.08 and spectrum[-1] < spectrum[10]


def test_count_must_be_a_positive_number():
    with pytest.raises(InputError, match="number of scenes"):
        load_data_specs(["synthetic-aerial:many"])
