"""CUDA inference (skipped without a GPU; run by benchmarks/gpu_check.sh on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from residual_fixtures import tiny_residual_model
from scene_fixtures import gradient_rgb, save_model, write_raster

from geohsr.inference.options import ReconstructOptions
from geohsr.inference.predictor import Predictor, resolve_camera
from geohsr.inference.scene import reconstruct_scene

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_matches_cpu(precision):
    x = np.random.default_rng(0).random((8, 3, 128, 128), dtype=np.float32) * 0.6
    cpu = Predictor(tiny_residual_model(), device="cpu", backend="torch", precision="fp32")
    cpu = cpu.predict(x)  # fp32: "auto" is bf16 on AVX512-BF16 CPUs such as the GPU host's
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


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("camera", [None, "cie1964"])
def test_cuda_graphs_match_eager_torch(precision, camera):
    from geohsr.inference.backends.torch_backend import TorchBackend

    camera = resolve_camera(camera) if camera else None
    graphed = Predictor(tiny_residual_model(), device="cuda", precision=precision, camera=camera)
    assert isinstance(graphed.backend, TorchBackend) and graphed.backend.graphs is not None
    eager = Predictor(tiny_residual_model(), device="cuda", precision=precision, camera=camera)
    eager.backend.graphs = None
    x = np.random.default_rng(1).random((4, 3, 100, 90), dtype=np.float32) * 0.6
    expected = eager.predict(x)
    for _ in range(2):  # capture, then replay
        got = graphed.predict(x)
        relative = np.abs(got - expected).mean() / np.abs(expected).mean()
        assert relative < {"fp32": 1e-5, "fp16": 2e-3}[precision]
    assert len(graphed.backend.graphs._captured) == 1


def test_cuda_graph_shapes_beyond_the_limit_run_eagerly():
    predictor = Predictor(tiny_residual_model(), device="cuda", batch_size=2)
    rng = np.random.default_rng(0)
    for side in (32, 64, 96, 128, 160, 192):
        out = predictor.predict(rng.random((2, 3, side, side), dtype=np.float32))
        assert out.shape == (2, 31, side, side) and np.isfinite(out).all()
    assert len(predictor.backend.graphs._captured) == predictor.backend.graphs.MAX_SHAPES


def test_cuda_outputs_come_back_in_their_own_pinned_blocks():
    from geohsr.inference.backends.torch_backend import to_host

    gpu = torch.arange(2 * 31 * 8 * 8, dtype=torch.float32, device="cuda").view(2, 31, 8, 8)
    first = to_host(gpu)
    second = to_host(gpu * 2)  # a later call must not overwrite the earlier array
    np.testing.assert_array_equal(first, gpu.cpu().numpy())
    np.testing.assert_array_equal(second, 2 * first)
    assert first.flags.c_contiguous and first.dtype == np.float32
    predictor = Predictor(tiny_residual_model(), device="cuda", precision="fp32")
    x = np.random.default_rng(2).random((2, 3, 64, 64), dtype=np.float32) * 0.6
    a, b = predictor.predict(x), predictor.predict(x[::-1].copy())
    np.testing.assert_allclose(a[::-1], b, rtol=1e-5, atol=1e-6)  # order follows the input
