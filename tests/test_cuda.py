"""CUDA inference (skipped without a GPU; run by benchmarks/gpu_check.sh on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from residual_fixtures import tiny_residual_model
from scene_fixtures import gradient_rgb, save_model, write_raster

from geohsr.inference.options import ReconstructOptions
from geohsr.inference.predictor import Predictor
from geohsr.inference.scene import reconstruct_scene

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_matches_cpu(precision):
    x = np.random.default_rng(0).random((8, 3, 128, 128), dtype=np.float32) * 0.6
    cpu = Predictor(tiny_residual_model(), device="cpu", backend="torch").predict(x)
    cuda = Predictor(tiny_residual_model(), device="cuda", precision=precision)
    assert cuda.provenance()["backend"] == "torch"
    assert cuda.provenance()["precision"] == precision
    got = cuda.predict(x)
    tolerance = {"fp32": 1e-5, "fp16": 2e-2, "bf16": 5e-2}[precision]  # fp32: no TF32
    relative = np.abs(got - cpu).mean() / np.abs(cpu).mean()
    assert relative < tolerance


def test_cuda_auto_precision_is_fp16():
    assert Predictor(tiny_residual_model(), device="cuda").provenance()["precision"] == "fp16"


def test_cuda_scene_reconstruction(tmp_path):
    scene = write_raster(tmp_path / "in.tif", gradient_rgb(300, 260), nodata=0)
    weights = save_model(tiny_residual_model(), tmp_path / "w.safetensors")
    options = ReconstructOptions(tile=128, device="cuda", batch_size=8)
    result = reconstruct_scene(scene, tmp_path / "cube.tif", weights=weights, options=options)
    with rasterio.open(result.output) as cube:
        assert cube.count == 31 and cube.tags()["INFERENCE"].startswith("torch fp16")
        assert np.isfinite(cube.read(16)).all()
