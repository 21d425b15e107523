"""INT8-adapted weights (``geohsr finetune --int8-adapt``): training writes a copy that
records its source, resumes on the same curve, and ``--precision int8`` runs the copy only
when it was made from exactly the weights loaded. Skips where NNCF or OpenVINO INT8 is
missing (``pip install "geohsr[int8]"``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from backend_fixtures import needs_int8
from residual_fixtures import tiny_residual_model
from training_fixtures import smooth_cube, write_cube_tif

from geohsr.inference.backends.int8 import (
    ADAPTED_FROM_KEY,
    adapted_weights_path,
    load_adapted_network,
)
from geohsr.models.weights import file_sha256, load_weights, read_metadata, save_weights


def _weights_with_adapted_copy(folder: Path, *, source_sha: str | None = None) -> Path:
    """A tiny residual model's weights in ``folder`` and a perturbed copy in ``folder/int8``
    recording ``source_sha`` (default: the weights' own SHA-256)."""
    weights = save_weights(tiny_residual_model(seed=3), folder / "tiny.safetensors")
    copy = tiny_residual_model(seed=3)
    with torch.no_grad():
        for parameter in copy.net.parameters():
            parameter.mul_(1.01)
    sha = source_sha or file_sha256(weights)
    save_weights(copy, adapted_weights_path(weights), {ADAPTED_FROM_KEY: {"sha256": sha}})
    return weights


def test_adapted_copy_is_used_only_when_made_from_these_weights(tmp_path, capsys):
    weights = _weights_with_adapted_copy(tmp_path / "a")
    model, _ = load_weights(weights)
    network, path = load_adapted_network(model)
    assert path == tmp_path / "a" / "int8" / "tiny.safetensors"
    assert not torch.equal(network.net.head[1].weight, model.net.head[1].weight)
    assert not network.training and not any(p.requires_grad for p in network.parameters())

    stale = _weights_with_adapted_copy(tmp_path / "b", source_sha="0" * 64)
    assert load_adapted_network(load_weights(stale)[0]) is None
    message = capsys.readouterr().err
    assert "was not adapted from tiny.safetensors" in message and "no INT8-adapted" not in message
    assert load_adapted_network(tiny_residual_model()) is None  # no weights file at all
    assert "no INT8-adapted copy" in capsys.readouterr().err

    broken = _weights_with_adapted_copy(tmp_path / "c")
    adapted_weights_path(broken).write_bytes(b"\0" * 100)  # truncated, corrupt
    assert load_adapted_network(load_weights(broken)[0]) is None
    message = capsys.readouterr().err
    assert "INT8-adapted copy" in message and "cannot be used" in message
    assert "quantising the weights themselves" in message and "no INT8-adapted" not in message


def test_a_metadata_edit_of_the_weights_keeps_its_adapted_copy(tmp_path, capsys):
    from geohsr.exceptions import WeightsError
    from geohsr.models.weights import SAME_TENSORS_KEY, save_metadata_edit, tensor_sources

    weights = _weights_with_adapted_copy(tmp_path)
    original = file_sha256(weights)
    model, _ = load_weights(weights)
    model.set_render_sigma(0.1, 0.2)
    save_metadata_edit(model, weights, weights)  # in place, as for the shipped weights
    meta = read_metadata(weights)
    assert meta["config"]["render_sigma"] == [0.1, 0.2] and file_sha256(weights) != original
    assert meta[SAME_TENSORS_KEY] == {"weights": "tiny.safetensors", "sha256": original}
    assert tensor_sources(weights) == {original, file_sha256(weights)}
    assert load_adapted_network(load_weights(weights)[0]) is not None
    assert "not adapted" not in capsys.readouterr().err
    model.set_render_sigma(0.2, 0.2)
    again = save_metadata_edit(model, weights, tmp_path / "again.safetensors")
    assert read_metadata(again)[SAME_TENSORS_KEY]["sha256"] == original  # the first file
    with torch.no_grad():
        model.residual_scale.add_(1.0)
    before = file_sha256(weights)
    with pytest.raises(WeightsError, match="tensors of tiny.safetensors changed"):
        save_metadata_edit(model, weights, weights)
    assert file_sha256(weights) == before and not list(tmp_path.glob("*.partial"))


@needs_int8
def test_int8_predictor_runs_the_adapted_network_and_records_it(tmp_path, monkeypatch):
    from geohsr.inference.predictor import Predictor

    monkeypatch.setenv("GEOHSR_CACHE_DIR", str(tmp_path / "cache"))
    weights = _weights_with_adapted_copy(tmp_path / "w")
    rgb = np.random.default_rng(0).uniform(0.05, 0.9, (2, 3, 64, 64)).astype(np.float32)
    adapted = Predictor.from_weights(weights, device="cpu", backend="openvino", precision="int8")
    provenance = adapted.provenance()
    assert provenance["network_weights"] == "int8/tiny.safetensors"
    assert provenance["network_weights_sha256"] == file_sha256(adapted_weights_path(weights))
    (tmp_path / "w" / "int8" / "tiny.safetensors").unlink()
    plain = Predictor.from_weights(weights, device="cpu", backend="openvino", precision="int8")
    assert "network_weights" not in plain.provenance()
    assert not np.array_equal(adapted.predict(rgb), plain.predict(rgb))
    fp32 = Predictor.from_weights(weights, device="cpu", backend="openvino", precision="fp32")
    assert fp32.backend.network_weights is None  # only int8 runs the adapted copy


@needs_int8
def test_int8_adapt_trains_resumes_and_records_its_source(tmp_path, monkeypatch):
    from geohsr.inference.backends.int8 import calibration_images
    from geohsr.training import int8_adapt
    from geohsr.training.config import TrainConfig
    from geohsr.training.int8_adapt import Int8Adaptation

    few = lambda model: calibration_images(model, count=4, size=64)  # noqa: E731 (fast)
    monkeypatch.setattr(int8_adapt, "calibration_images", few)

    cubes = tmp_path / "cubes"
    for i in range(2):
        write_cube_tif(cubes / f"scene{i}.tif", smooth_cube(48, 48, seed=i))
    init = save_weights(tiny_residual_model(seed=1), tmp_path / "init.safetensors")

    def config(out: str, **extra) -> TrainConfig:
        return TrainConfig(
            data=[f"cubes:{cubes}"],
            out_dir=str(tmp_path / out),
            model="mxr_unet18_rpr",
            width=0.125,
            init=str(init),
            int8_adapt=True,
            crop=32,
            batch_size=2,
            steps=4,
            lr=1e-4,
            augment=False,
            progress=False,
            val_scenes=["scene1"],
            checkpoint_every=2,
            **extra,
        )

    straight = Int8Adaptation(config("a"))
    path = straight.run()
    assert path == tmp_path / "a" / "int8" / "init.safetensors"
    meta = read_metadata(path)
    assert meta[ADAPTED_FROM_KEY] == {"weights": "init.safetensors", "sha256": file_sha256(init)}
    assert meta["int8_adaptation"]["steps"] == 4 and str(tmp_path) not in json.dumps(meta)
    adapted, _ = load_weights(path)
    original, _ = load_weights(init)
    assert not torch.equal(adapted.net.head[1].weight, original.net.head[1].weight)
    assert torch.equal(adapted.base_weight, original.base_weight)  # only the network learns

    Int8Adaptation(config("b", stop_after=2)).run()
    resumed = Int8Adaptation(config("b", resume=True))
    assert resumed.step == 2
    resumed.run()
    again, _ = load_weights(tmp_path / "b" / "int8" / "init.safetensors")
    for key, value in adapted.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=1e-5, atol=1e-6)
