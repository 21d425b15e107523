"""Data loaders on fixtures in the exact NTIRE / ARAD_1K / CAVE / user-tile layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from training_fixtures import (
    smooth_cube,
    write_arad1k,
    write_cube_tif,
    write_ntire2020,
    write_tile_pair,
)

from geohsr.exceptions import InputError, TrainingError
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.spectral.cameras import cie1964
from geohsr.training.camera import CameraSampler, CameraSampling
from geohsr.training.datasets import (
    SceneCache,
    TrainingCrops,
    evaluation_pairs,
    load_data_specs,
    split_scenes,
)
from geohsr.training.datasets.augment import Augmentation, Geometry, apply_geometry
from geohsr.training.datasets.ntire import read_mat_cube
from geohsr.training.datasets.spectral_io import resampling_matrix

CAVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cave"


def test_mat_v73_cube_is_transposed_back(tmp_path):
    write_ntire2020(tmp_path, train=1, valid=0, size=(40, 48))
    cube = read_mat_cube(tmp_path / "NTIRE2020_Train_Spectral" / "ARAD_HS_0001.mat")
    np.testing.assert_array_equal(cube, smooth_cube(40, 48, seed=1))  # (31, H, W)


def test_ntire2020_pairs_and_challenge_split(tmp_path):
    write_ntire2020(tmp_path)
    scenes = load_data_specs([f"ntire2020:{tmp_path}"])
    assert [s.name for s in scenes] == [
        "ARAD_HS_0001",
        "ARAD_HS_0002",
        "ARAD_HS_0003",
        "ARAD_HS_0101",
    ]
    assert (scenes[0].height, scenes[0].width) == (40, 48)
    train, val = split_scenes(scenes, seed=0)
    assert [s.name for s in val] == ["ARAD_HS_0101"] and len(train) == 3
    data = SceneCache().get(scenes[0])
    assert data.rgb.shape == (3, 40, 48) and data.cube.shape == (31, 40, 48)
    real = load_data_specs([f"ntire2020-realworld:{tmp_path}"])
    assert SceneCache().get(real[0]).rgb.dtype == np.uint8


def test_arad1k_layout_with_bands(tmp_path):
    write_arad1k(tmp_path)
    scenes = load_data_specs([f"arad1k:{tmp_path}"])
    train, val = split_scenes(scenes)
    assert [s.name for s in val] == ["ARAD_1K_0901"] and len(train) == 3
    np.testing.assert_allclose(
        SceneCache().get(train[1]).cube, smooth_cube(40, 48, seed=2), atol=1e-6
    )


def test_spectral_cubes_scale_and_seeded_split(tmp_path):
    for i in range(5):
        write_cube_tif(tmp_path / f"scene{i}.tif", smooth_cube(24, 20, seed=i))
    scenes = load_data_specs([f"cubes:{tmp_path}"])
    data = SceneCache().get(scenes[0])
    assert data.cube.dtype == np.uint16
    np.testing.assert_allclose(
        data.cube_window(slice(None), slice(None)), smooth_cube(24, 20, seed=0), atol=1e-4
    )
    a = split_scenes(scenes, val_fraction=0.4, seed=1)
    b = split_scenes(scenes, val_fraction=0.4, seed=1)
    assert [s.name for s in a[1]] == [s.name for s in b[1]] and len(a[1]) == 2
    _, named = split_scenes(scenes, val_names=["scene3"])
    assert [s.name for s in named] == ["scene3"]
    with pytest.raises(InputError, match="not found"):
        split_scenes(scenes, val_names=["nope"])


def test_bad_specs(tmp_path):
    with pytest.raises(InputError, match="KIND:PATH"):
        load_data_specs(["hdf:/x"])
    with pytest.raises(InputError, match="not found"):
        load_data_specs([f"cave:{tmp_path / 'missing'}"])


def test_resampling_matrix_box_average_and_coverage():
    fine = np.arange(380.0, 721.0, 2.0)
    matrix = resampling_matrix(fine)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    linear = 0.001 * fine + 0.1  # a linear spectrum stays linear
    np.testing.assert_allclose(matrix @ linear, 0.001 * WAVELENGTHS_NM + 0.1, atol=1e-6)
    with pytest.raises(InputError, match="400-700"):
        resampling_matrix(np.arange(450.0, 900.0, 10.0))


def test_user_tiles_resampled_and_aligned_by_georeference(tmp_path):
    rgb_path, hs_path = write_tile_pair(tmp_path, size=64)
    for spec in (f"tiles:{rgb_path},{hs_path}", f"tiles:{tmp_path}"):
        (scene,) = load_data_specs([spec])
        assert scene.name == "field" and (scene.height, scene.width) == (60, 60)
    data = SceneCache().get(scene)
    assert data.cube.shape == (31, 60, 60) and data.rgb.shape == (3, 60, 60)
    assert data.valid[2:-2, 2:-2].all()
    truth = smooth_cube(64, 64, seed=7)[:, 3:63, 3:63]
    inner = (slice(None), slice(2, -2), slice(2, -2))
    assert np.abs(data.cube[inner] - truth[inner]).mean() < 0.01
    train, val = split_scenes([scene], val_fraction=0.25)
    assert train[0].row_slice == (0, 45) and val[0].row_slice == (45, 60)


def test_user_tiles_must_cover_400_700(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    rgb_path, _ = write_tile_pair(tmp_path)
    narrow = tmp_path / "narrow.tif"
    with rasterio.open(
        narrow,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=3,
        dtype="float32",
        crs="EPSG:32618",
        transform=from_origin(500000.0, 4000000.0, 8.0, 8.0),
    ) as dst:
        dst.write(np.ones((3, 8, 8), np.float32))
        for band, wl in enumerate((500, 550, 600), start=1):
            dst.update_tags(band, wavelength=str(wl))
    (scene,) = load_data_specs([f"tiles:{rgb_path},{narrow}"])
    with pytest.raises(InputError, match="400-700"):
        SceneCache().get(scene)


def test_training_crops_are_pure_functions_of_the_index(tmp_path):
    for i in range(2):
        write_cube_tif(tmp_path / f"s{i}.tif", smooth_cube(40, 40, seed=i))
    scenes = load_data_specs([f"cave:{tmp_path}"])
    camera = CameraSampler([cie1964()])
    crops = TrainingCrops(scenes, crop=16, camera=camera, seed=5)
    rgb, cube, css, known, exposure = crops[11]
    assert rgb.shape == (3, 16, 16) and cube.shape == (31, 16, 16) and css.shape == (3, 31)
    assert known.dtype == torch.bool and exposure.shape == ()
    assert rgb.dtype == torch.float32 and 0 <= rgb.min() and rgb.max() <= 1
    again = TrainingCrops(scenes, crop=16, camera=camera, seed=5)[11]
    assert torch.equal(rgb, again[0]) and torch.equal(cube, again[1])
    assert not torch.equal(cube, crops[12][1])
    with pytest.raises(TrainingError, match="smaller than"):
        TrainingCrops(scenes, crop=64, camera=camera, seed=0)


def test_geometry_identity_and_flip():
    window = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6)
    np.testing.assert_array_equal(apply_geometry(window, Geometry(), 6), window)
    flipped = apply_geometry(window, Geometry(flip_x=True), 6)
    np.testing.assert_array_equal(flipped, window[:, :, ::-1])
    # a pure zoom of 1 through the affine path (angle 0) keeps the centre values
    nearly = apply_geometry(window, Geometry(angle_deg=1e-9, zoom=1.0), 6)
    np.testing.assert_allclose(nearly, window, atol=1e-3)
    assert Augmentation().max_rotate == 10.0


def test_evaluation_pairs_render_with_cameras_in_turn(tmp_path):
    for i in range(2):
        write_cube_tif(tmp_path / f"s{i}.tif", smooth_cube(20, 20, seed=i))
    scenes = load_data_specs([f"cave:{tmp_path}"])
    flat = type(cie1964())("flat", np.full((3, 31), 0.1, np.float32))
    pairs = list(evaluation_pairs(scenes, CameraSampler([cie1964(), flat])))
    assert [p.name for p in pairs] == ["s0@cie1964", "s1@flat"]
    assert pairs[0].rgb.shape == (3, 20, 20) and pairs[0].cube.shape == (31, 20, 20)
    every = list(evaluation_pairs(scenes, CameraSampler([cie1964(), flat]), every_camera=True))
    assert [p.name for p in every] == ["s0@cie1964", "s0@flat", "s1@cie1964", "s1@flat"]
    assert {p.input_step for p in pairs} == {0.0}  # float renders: exact projection
    eight_bit = CameraSampler([cie1964()], CameraSampling(quantize_prob=0.5))
    assert {p.input_step for p in evaluation_pairs(scenes, eight_bit)} == {1 / 255}


def test_evaluation_tells_the_input_step_and_restores_the_models_own(tmp_path):
    from residual_fixtures import tiny_residual_model

    from geohsr.training.datasets.samples import EvalPair
    from geohsr.training.evaluate import evaluate_model

    cube = smooth_cube(24, 24, seed=2)
    css = cie1964().normalised
    rgb = np.round(np.einsum("cl,lhw->chw", css, cube) * 255).astype(np.float32) / 255
    model = tiny_residual_model(residual_scale=2.0)
    model.set_quantization_cell(True)
    model.set_input_step(0.5)
    seen = []
    original = model.set_input_step
    model.set_input_step = lambda step: (seen.append(step), original(step))[1]
    pairs = [EvalPair("a", rgb, cube, css, 1 / 255), EvalPair("b", rgb, cube, css)]
    report = evaluate_model(model, pairs)
    assert seen == [1 / 255, 0.0, 0.5] and model.input_step == 0.5
    assert report["images"][0]["mrae"] != report["images"][1]["mrae"]


@pytest.mark.skipif(not CAVE.is_dir(), reason="shared CAVE data not available")
def test_cave_scene_loads_as_reflectance():
    (scene,) = load_data_specs([f"cave:{CAVE / 'flowers_ms.tif'}"])
    data = SceneCache().get(scene)
    assert data.cube.shape == (31, 512, 512) and data.cube.dtype == np.uint16
    window = data.cube_window(slice(0, 8), slice(0, 8))
    assert window.dtype == np.float32 and 0 <= window.min() and window.max() < 1


def test_user_tiles_reject_16_bit_rgb(tmp_path):
    import rasterio

    rgb_path, hs_path = write_tile_pair(tmp_path, size=16)
    with rasterio.open(rgb_path) as src:
        profile, values = src.profile, src.read()
    wide = tmp_path / "wide_rgb.tif"
    with rasterio.open(wide, "w", **{**profile, "dtype": "uint16"}) as dst:
        dst.write(values.astype(np.uint16) * 257)
    (scene,) = load_data_specs([f"tiles:{wide},{hs_path}"])
    with pytest.raises(InputError, match="8-bit"):
        SceneCache().get(scene)


def test_user_tiles_clip_negative_reflectance(tmp_path):
    rgb_path, hs_path = write_tile_pair(tmp_path, size=64)
    with rasterio.open(hs_path, "r+") as dst:  # atmospheric-correction noise below 0
        values = dst.read()
        values[:, :4, :4] = -300
        dst.write(values)
    (scene,) = load_data_specs([f"tiles:{rgb_path},{hs_path}"])
    cube = SceneCache().get(scene).cube
    assert cube.min() == 0.0 and (cube[:, :8, :8] == 0).any()


def test_evaluation_pairs_tell_tiles_their_one_known_camera(tmp_path):
    rgb_path, hs_path = write_tile_pair(tmp_path, size=64)
    scenes = load_data_specs([f"tiles:{rgb_path},{hs_path}"])
    (plain,) = evaluation_pairs(scenes, CameraSampler([cie1964()]))
    assert plain.name == "field" and plain.css is None
    (known,) = evaluation_pairs(scenes, CameraSampler([cie1964()]), camera_known=True)
    assert known.name == "field+known"
    np.testing.assert_array_equal(known.css, cie1964().normalised)
    np.testing.assert_array_equal(known.rgb, plain.rgb)
    flat = type(cie1964())("flat", np.full((3, 31), 0.1, np.float32))
    with pytest.raises(InputError, match="exactly one --camera"):
        list(evaluation_pairs(scenes, CameraSampler([cie1964(), flat]), camera_known=True))
