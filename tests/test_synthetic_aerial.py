"""synthetic-aerial scenes: measured spectra painted into seeded aerial layouts."""

import numpy as np
import pytest

from geohsr.exceptions import InputError
from geohsr.training.datasets import load_data_specs
from geohsr.training.datasets.synthetic_aerial import (
    SpectralLibrary,
    build_aerial_scene,
    vary_spectrum,
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


def test_varied_scenes_vary_every_library_spectrum_smoothly():
    flat = {
        name: np.array([0]) for name in ("vegetation", "soil", "dry_vegetation", "roof", "pavement")
    }
    library = SpectralLibrary(np.full((1, 31), 0.4, np.float32), flat)
    plain = build_aerial_scene(library, np.random.default_rng(0), 64)
    varied = build_aerial_scene(library, np.random.default_rng(0), 64, np.random.default_rng(5))
    again = build_aerial_scene(library, np.random.default_rng(0), 64, np.random.default_rng(5))
    np.testing.assert_array_equal(varied, again)  # seeded
    assert np.median(varied.std(axis=0) / varied.mean(axis=0)) > 0.01  # no longer flat
    assert 0 <= varied.min() and varied.max() <= 1
    # the same layout: the varied scene stays close to the plain one, pixel by pixel
    assert np.median(np.abs(varied - plain) / plain) < 0.5
    # a varied spectrum is the original times a smooth positive curve
    curve = vary_spectrum(np.full(31, 0.4, np.float32), np.random.default_rng(3)) / 0.4
    assert curve.min() > 0 and np.abs(np.diff(curve, 2)).max() < 0.05 * curve.max()


def test_plain_scenes_are_unchanged_by_the_varied_kind():
    # a stub library of distinct members, so a change in the order of draws shows; the
    # figures were recorded with the generator before the varied kind existed (a9459e1)
    wl = np.linspace(0, 1, 31, dtype=np.float32)
    spectra = np.stack([0.1 + 0.05 * k + 0.3 * wl ** (k % 3 + 1) for k in range(10)])
    names = ("vegetation", "soil", "dry_vegetation", "roof", "pavement")
    groups = {name: np.array([2 * i, 2 * i + 1]) for i, name in enumerate(names)}
    library = SpectralLibrary(spectra.astype(np.float32), groups)
    cube = build_aerial_scene(library, np.random.default_rng(11), 48).astype(np.float64)
    assert cube.sum() == pytest.approx(14951.950575219933, rel=1e-7)
    assert (cube**2).sum() == pytest.approx(4075.3428994796254, rel=1e-7)
    np.testing.assert_allclose(cube[:3, 5, 7], [0.0865238532, 0.0865286663, 0.0865623131], 1e-6)
    np.testing.assert_allclose(cube[:3, 40, 33], [0.1051809192, 0.1054146588, 0.1061158553], 1e-6)


def test_varied_kind_has_its_own_names_and_leaves_the_plain_scenes_alone():
    (varied,) = load_data_specs(["synthetic-aerial-varied:1"])
    (plain,) = load_data_specs(["synthetic-aerial:1"])
    assert varied.name == "aerial_varied_0000" and varied.key != plain.key
    cube = varied.loader().cube
    assert cube.shape == (31, 256, 256) and not np.array_equal(cube, plain.loader().cube)


def test_water_is_dark_and_absorbs_red():
    spectrum = water_spectrum(np.random.default_rng(1))
    assert spectrum.max() <= 0.08 and spectrum[-1] < spectrum[10]


def test_count_must_be_a_positive_number():
    with pytest.raises(InputError, match="number of scenes"):
        load_data_specs(["synthetic-aerial:many"])
