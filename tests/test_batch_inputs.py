"""Batch bookkeeping without a cluster: input expansion, output naming, layout, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geohsr.batch.cluster import local_layout
from geohsr.batch.inputs import Scene, expand_inputs, output_path, plan_jobs, select_rgb_asset
from geohsr.batch.report import REPORT_FILENAME, BatchReport, SceneRecord
from geohsr.exceptions import GeoHSRError, InputError


def _touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _locations(scenes: list[Scene]) -> list[str]:
    return [scene.location for scene in scenes]


def test_paths_and_globs_expand_in_order_without_duplicates(tmp_path):
    a, b, c = tmp_path / "a.tif", tmp_path / "sub" / "b.tif", tmp_path / "sub" / "c.TIF"
    _touch(a, b, c)
    scenes = expand_inputs([str(a), str(tmp_path / "sub" / "*.tif"), str(a)])
    assert _locations(scenes) == [str(a), str(b)]
    assert [scene.name for scene in scenes] == ["a", "b"]
    recursive = expand_inputs([str(tmp_path / "**" / "*.tif")])
    assert sorted(_locations(recursive)) == sorted([str(a), str(b)])


def test_folder_expands_to_its_rasters(tmp_path):
    _touch(tmp_path / "x.tif", tmp_path / "y.jp2", tmp_path / "notes.md")
    assert [s.name for s in expand_inputs([tmp_path])] == ["x", "y"]


def test_missing_path_and_empty_glob_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        expand_inputs([str(tmp_path / "nope.tif")])
    with pytest.raises(InputError, match="matches no files"):
        expand_inputs([str(tmp_path / "*.tif")])
    with pytest.raises(InputError, match="no input scenes"):
        expand_inputs([])


def test_text_manifest_resolves_relative_entries_and_skips_comments(tmp_path):
    _touch(tmp_path / "data" / "a.tif", tmp_path / "data" / "b.tif", tmp_path / "data" / "c.tif")
    manifest = tmp_path / "data" / "list.txt"
    manifest.write_text("# scenes\na.tif\n\n  b.tif  # second\nmissing.tif\n")
    scenes = expand_inputs([manifest])
    assert [s.name for s in scenes] == ["a", "b", "missing"]
    assert scenes[0].location == str(tmp_path / "data" / "a.tif")
    # a missing manifest entry is kept: it fails as a scene, it does not stop the run
    assert scenes[2].location == str(tmp_path / "data" / "missing.tif")


def test_csv_manifest_with_header_names_and_without_header(tmp_path):
    _touch(tmp_path / "a.tif", tmp_path / "b.tif")
    named = tmp_path / "named.csv"
    named.write_text("name,path,date\nfirst,a.tif,2024-01-01\nsecond,b.tif,2024-01-02\n")
    assert [(s.name, Path(s.location).name) for s in expand_inputs([named])] == [
        ("first", "a.tif"),
        ("second", "b.tif"),
    ]
    bare = tmp_path / "bare.csv"
    bare.write_text(f"{tmp_path / 'b.tif'},extra\n")
    assert [s.name for s in expand_inputs([bare])] == ["b"]
    empty_path = tmp_path / "broken.csv"
    empty_path.write_text("path,name\n,x\n")
    with pytest.raises(InputError, match="row 2 has no path"):
        expand_inputs([empty_path])


def test_same_output_name_from_two_locations_is_an_error(tmp_path):
    _touch(tmp_path / "one" / "scene.tif", tmp_path / "two" / "scene.tif")
    with pytest.raises(InputError, match="same output 'scene'"):
        expand_inputs([str(tmp_path / "*" / "scene.tif")])


def _stac_item(assets: dict, links: list | None = None) -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "S2A_tile/2024",
        "properties": {},
        "links": links or [],
        "assets": assets,
    }


def test_stac_item_picks_visual_asset_and_resolves_relative_href(tmp_path):
    item = _stac_item(
        {
            "thumbnail": {"href": "thumb.png", "roles": ["thumbnail"]},
            "B04": {"href": "B04.tif", "eo:bands": [{"name": "B04", "common_name": "red"}]},
            "tci": {"href": "../imgs/tci.tif", "roles": ["visual"], "type": "image/tiff"},
        }
    )
    path = tmp_path / "items" / "item.json"
    path.parent.mkdir()
    path.write_text(json.dumps(item))
    (scene,) = expand_inputs([path])
    assert scene.name == "S2A_tile_2024"
    assert scene.location == str((tmp_path / "imgs" / "tci.tif").resolve())
    assert scene.rgb_bands is None


def test_stac_asset_by_band_names_records_rgb_order_and_follows_self_link(tmp_path):
    bands = [{"common_name": name} for name in ("blue", "green", "red", "nir")]
    item = _stac_item(
        {
            "rgbn": {"href": "rgbn.tif", "eo:bands": bands},
            "red": {"href": "red.tif", "eo:bands": bands[2:3]},
        },
        links=[{"rel": "self", "href": "https://example.com/items/x/item.json"}],
    )
    assert select_rgb_asset(item)[0] == "rgbn"
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    (scene,) = expand_inputs([path])
    assert scene.rgb_bands == (3, 2, 1)
    assert scene.location == "https://example.com/items/x/rgbn.tif"


def test_stac_item_without_rgb_asset_and_non_stac_json_are_errors(tmp_path):
    no_rgb = tmp_path / "no_rgb.json"
    no_rgb.write_text(json.dumps(_stac_item({"nir": {"href": "nir.tif"}})))
    with pytest.raises(InputError, match="no RGB asset"):
        expand_inputs([no_rgb])
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="not a STAC item"):
        expand_inputs([other])


def test_stac_item_collection_gives_one_scene_per_item(tmp_path):
    items = []
    for index in range(2):
        item = _stac_item({"visual": {"href": f"s{index}.tif"}})
        item["id"] = f"item{index}"
        items.append(item)
    path = tmp_path / "items.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    assert [s.name for s in expand_inputs([path])] == ["item0", "item1"]


def test_output_naming(tmp_path):
    assert output_path(tmp_path, "a", "zarr") == tmp_path / "a.zarr"
    assert output_path(tmp_path, "a", "tif") == tmp_path / "a.tif"
    with pytest.raises(InputError, match="unknown output format"):
        output_path(tmp_path, "a", "nc")
    (job,) = plan_jobs([Scene("b", "/x/b.tif")], tmp_path, "tif")
    assert job.output == tmp_path / "b.tif" and job.name == "b"
    with pytest.raises(InputError, match="overwrite the input"):
        plan_jobs([Scene("b", str(tmp_path / "b.tif"))], tmp_path, "tif")


@pytest.mark.parametrize(
    ("cores", "gpus", "workers", "threads", "expected"),
    [
        (2, 0, None, None, (1, 2, 0)),
        (16, 0, None, None, (4, 4, 0)),
        (16, 0, None, 2, (8, 2, 0)),
        (16, 0, 3, None, (3, 5, 0)),
        (2, 0, 2, None, (2, 1, 0)),
        (16, 4, None, None, (4, 4, 4)),
        (8, 2, None, 1, (2, 1, 2)),
    ],
)
def test_local_layout(cores, gpus, workers, threads, expected):
    layout = local_layout(cores, gpus, n_workers=workers, threads_per_worker=threads)
    assert (layout.n_workers, layout.threads_per_worker, layout.n_gpus) == expected
    assert layout.n_workers * layout.threads_per_worker <= max(cores, layout.n_workers)


def test_local_layout_rejects_zero():
    with pytest.raises(GeoHSRError, match="at least 1"):
        local_layout(4, 0, n_workers=0)


def test_report_counts_throughput_json_and_summary(tmp_path):
    records = [
        SceneRecord("a", "a.tif", "o/a.zarr", "done", seconds=2.0, megapixels=1.5),
        SceneRecord("b", "b.tif", "o/b.zarr", "skipped"),
        SceneRecord("c", "c.tif", "o/c.zarr", "failed", error="InputError: corrupt"),
        SceneRecord("d", "d.tif", "o/d.zarr", "done", seconds=1.0, megapixels=0.5),
    ]
    report = BatchReport(records, 4.0, 2, "tcp://x:1", "w.safetensors", "2024-01-01T00:00:00")
    assert report.counts == {"done": 2, "skipped": 1, "failed": 1}
    assert report.megapixels_per_second == pytest.approx(0.5)
    assert not report.ok
    path = report.write_json(tmp_path)
    assert path == tmp_path / REPORT_FILENAME
    data = json.loads(path.read_text())
    assert data["summary"]["failed"] == 1 and data["summary"]["total"] == 4
    assert data["summary"]["megapixels_per_second"] == pytest.approx(0.5)
    assert [s["status"] for s in data["scenes"]] == ["done", "skipped", "failed", "done"]
    assert data["scenes"][2]["error"] == "InputError: corrupt"
    text = report.summary_text()
    assert "2 done, 1 skipped, 1 failed" in text and "failed c: InputError: corrupt" in text
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_stac_band_order_reaches_the_scene_options_unless_bands_are_given():
    from geohsr.batch.worker import scene_options
    from geohsr.inference.options import ReconstructOptions

    (job,) = plan_jobs([Scene("s", "/x/s.tif", rgb_bands=(3, 2, 1))], "/out", "zarr")
    assert scene_options(job, ReconstructOptions()).bands == (3, 2, 1)
    assert scene_options(job, ReconstructOptions(bands=(1, 2, 3))).bands == (1, 2, 3)
    (plain,) = plan_jobs([Scene("p", "/x/p.tif")], "/out", "zarr")
    assert scene_options(plain, ReconstructOptions()).bands is None
