"""Inference backends and precisions: the choice, torch autocast, OpenVINO's values and cache.

OpenVINO tests skip where it is not installed (``pip install "geohsr[openvino]"``)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import rioxarray
import torch
import xarray as xr
from backend_fixtures import shipped_openvino_difference
from click.testing import CliRunner
from residual_fixtures import tiny_residual_model
from scene_fixtures import gradient_rgb, save_model, write_raster

import geohsr  # noqa: F401 - registers .hsr
from geohsr.cli.main import cli
from geohsr.exceptions import GeoHSRError, InputError, ModelError
from geohsr.inference import backends
from geohsr.inference.backends.capabilities import cpu_has_bf16, openvino_installed
from geohsr.inference.backends.torch_backend import TorchBackend, channels_first
from geohsr.inference.export import ExportableCore, core_fingerprint, finish
from geohsr.inference.options import ReconstructOptions
from geohsr.inference.predictor import Predictor, resolve_camera
from geohsr.inference.scene import reconstruct_scene
from geohsr.models import create_model

needs_openvino = pytest.mark.skipif(not openvino_installed(), reason="OpenVINO not installed")
SETTINGS = {"tile": 64, "overlap": 16, "batch_size": 2, "device": "cpu", "precision": "fp32"}


def trained_looking(name: str, seed: int = 0) -> torch.nn.Module:
    """A small model whose every part contributes (attention on; the camera-aware one with
    a fitted base and its residual switched on)."""
    torch.manual_seed(seed)
    if name.endswith(("_rpr+levels", "_rpr+gate")):  # level input (fourth channel trained)
        model = tiny_residual_model(seed=seed, level_input=32 / 255)
        with torch.no_grad():
            model.net.encoder.stem[0][0].weight[:, 3].normal_()
        if name.endswith("+gate"):  # and the bright-residual gain
            model.set_bright_residual_gain(0.4)
    elif name.endswith("_rpr"):
        model = tiny_residual_model(seed=seed)
    else:
        model = create_model(name, width=0.125)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith("gamma"):
                param.fill_(0.7)
    return model.eval()


# ---------------------------------------------------------------- choosing


def test_auto_backend_follows_installation_and_environment(monkeypatch):
    monkeypatch.delenv("GEOHSR_BACKEND", raising=False)
    monkeypatch.setattr(backends, "openvino_installed", lambda: True)
    assert backends.resolve_backend("auto", "cpu") == "openvino"
    assert backends.resolve_backend("auto", "cuda") == "torch"
    assert backends.resolve_backend(" OpenVINO ", "cpu") == "openvino"
    assert backends.resolve_precision("FP32", "torch", "cpu") == "fp32"
    monkeypatch.setattr(backends, "openvino_installed", lambda: False)
    assert backends.resolve_backend("auto", "cpu") == "torch"
    with pytest.raises(ModelError, match=r"pip install \"geohsr\[openvino\]\""):
        backends.resolve_backend("openvino", "cpu")
    monkeypatch.setenv("GEOHSR_BACKEND", "torch")
    monkeypatch.setattr(backends, "openvino_installed", lambda: True)
    assert backends.resolve_backend("auto", "cpu") == "torch"
    monkeypatch.setenv("GEOHSR_BACKEND", "tensorrt")
    with pytest.raises(ModelError, match="GEOHSR_BACKEND"):
        backends.resolve_backend("auto", "cpu")


def test_openvino_is_refused_on_cuda(monkeypatch):
    monkeypatch.setattr(backends, "openvino_installed", lambda: True)
    with pytest.raises(ModelError, match="CPU only"):
        backends.resolve_backend("openvino", "cuda")


def test_auto_precision_needs_hardware_and_a_measured_cost_below_one_percent(monkeypatch):
    monkeypatch.delenv("GEOHSR_PRECISION", raising=False)  # the suite sets fp32
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    assert backends.resolve_precision("auto", "torch", "cpu") == "fp32"
    with pytest.raises(ModelError, match="not available"):
        backends.resolve_precision("bf16", "torch", "cpu")
    with pytest.raises(ModelError, match="not available"):
        backends.resolve_precision("fp16", "torch", "cpu")
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    monkeypatch.setitem(backends.MEASURED_MRAE_COST, "bf16", 0.004)
    assert backends.resolve_precision("auto", "torch", "cpu") == "bf16"
    monkeypatch.setitem(backends.MEASURED_MRAE_COST, "bf16", 0.02)  # too costly for auto
    assert backends.resolve_precision("auto", "torch", "cpu") == "fp32"
    assert backends.resolve_precision("bf16", "torch", "cpu") == "bf16"  # asked for: allowed
    monkeypatch.setitem(backends.MEASURED_MRAE_COST, "fp16", 0.003)
    assert backends.resolve_precision("auto", "torch", "cuda") == "fp16"


def test_precision_environment_sets_what_auto_means_where_the_device_runs_it(monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    monkeypatch.setenv("GEOHSR_PRECISION", "FP32")
    assert backends.resolve_precision("auto", "torch", "cpu") == "fp32"
    assert backends.resolve_precision("bf16", "torch", "cpu") == "bf16"  # explicit wins
    monkeypatch.setenv("GEOHSR_PRECISION", "fp16")  # not on this CPU: auto decides
    assert backends.resolve_precision("auto", "torch", "cpu") == "bf16"
    assert backends.resolve_precision("auto", "torch", "cuda") == "fp16"
    monkeypatch.setenv("GEOHSR_PRECISION", "int4")
    with pytest.raises(ModelError, match="GEOHSR_PRECISION"):
        backends.resolve_precision("auto", "torch", "cpu")


def test_options_reject_unknown_backend_and_precision():
    with pytest.raises(InputError, match="--backend"):
        ReconstructOptions(backend="onnx")
    with pytest.raises(InputError, match="--precision"):
        ReconstructOptions(precision="int4")
    options = ReconstructOptions(backend="OpenVINO", precision=" FP32")  # as typed by users
    assert (options.backend, options.precision) == ("openvino", "fp32")


def test_cli_takes_backend_and_precision_in_any_case(tmp_path):
    scene = write_raster(tmp_path / "in.tif", gradient_rgb(40, 40))
    weights = save_model(trained_looking("rpr2"), tmp_path / "w.safetensors")
    result = CliRunner().invoke(
        cli,
        ["reconstruct", str(scene), str(tmp_path / "out.tif"), "--weights", str(weights),
         "--device", "cpu", "--backend", "TORCH", "--precision", "FP32"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "out.tif") as cube:
        assert cube.tags()["INFERENCE"] == "torch fp32"


# ---------------------------------------------------------------- torch


def test_channels_first_equals_numpy_copy():
    y = torch.rand(3, 31, 21, 19).contiguous(memory_format=torch.channels_last)
    out = channels_first(y)
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, np.ascontiguousarray(y.numpy()))


def test_torch_bf16_autocast_stays_close_to_fp32():
    model = Predictor(trained_looking("mxr_unet18"), device="cpu", backend="torch").model
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    fp32 = TorchBackend(model, precision="fp32").forward(x)
    bf16 = TorchBackend(model, precision="bf16").forward(x)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    relative = np.abs(bf16 - fp32).mean() / np.abs(fp32).mean()
    assert 0 < relative < 0.05  # rounded (not fp32), but close


# ---------------------------------------------------------------- OpenVINO


@needs_openvino
@pytest.mark.parametrize(
    "name", ["mxr_unet18", "mxr_unet18_rpr", "mxr_unet18_rpr+levels", "mxr_unet18_rpr+gate", "rpr2"]
)
@pytest.mark.parametrize("shape", [(97, 131), (16, 16)])
def test_openvino_equals_torch(name, shape):
    model = trained_looking(name)
    reference = Predictor(model, device="cpu", backend="torch", precision="fp32")
    converted = Predictor(trained_looking(name), device="cpu", backend="openvino", precision="fp32")
    assert converted.provenance()["backend"] == "openvino"
    x = np.random.default_rng(1).random((3, 3, *shape), dtype=np.float32)
    expected, got = reference.predict(x), converted.predict(x)
    assert got.shape == expected.shape and got.flags["C_CONTIGUOUS"]
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * scale)


def test_the_exported_core_leaves_the_classical_regression_to_float32_torch():
    """Compiled backends run the core at reduced precision; the root-polynomial base (and a
    whole per-pixel regression) must stay outside it: in OpenVINO bf16 it moved outputs of
    the shipped model by 2 %."""
    x = torch.rand(2, 3, 32, 64)
    for name in ("mxr_unet18_rpr", "rpr2"):
        model = Predictor(trained_looking(name), device="cpu", backend="torch").model
        core = ExportableCore(model)(x)
        if name == "rpr2":
            assert torch.equal(core, x)  # no network: the RGB passes through
        else:
            assert torch.equal(core, model.forward_residual_term(x))
        with torch.no_grad():
            assert torch.allclose(finish(model, core, x), model(x), atol=1e-5)


@needs_openvino
@pytest.mark.skipif(not cpu_has_bf16(), reason="no bfloat16 arithmetic on this CPU")
def test_openvino_bf16_of_the_shipped_model_stays_within_half_a_percent():
    relative = shipped_openvino_difference("bf16")
    assert 0 < relative < 0.005  # 2 % when the classical base ran in bf16


@needs_openvino
def test_openvino_with_a_known_camera_renders_back_to_the_input():
    camera = resolve_camera("cie1964")
    predictor = Predictor(
        trained_looking("mxr_unet18_rpr"), device="cpu", backend="openvino", camera=camera
    )
    x = 0.2 + 0.3 * np.random.default_rng(2).random((2, 3, 40, 40), dtype=np.float32)
    spectra = predictor.predict(x)
    rendered = np.einsum("cl,nlhw->nchw", camera.normalised, spectra)
    assert spectra.min() >= 0
    np.testing.assert_allclose(rendered, x, atol=2e-3)


@needs_openvino
def test_openvino_window_values_do_not_depend_on_call_mates():
    backend = Predictor(trained_looking("mxr_unet18_rpr"), device="cpu", backend="openvino")
    x = np.random.default_rng(3).random((5, 3, 64, 64), dtype=np.float32)
    pairs = np.concatenate([backend.backend.forward(x[:2]), backend.backend.forward(x[2:])])
    threes = np.concatenate([backend.backend.forward(x[:3]), backend.backend.forward(x[3:])])
    np.testing.assert_array_equal(pairs, threes)


@needs_openvino
@pytest.mark.parametrize("name", ["mxr_unet18", "mxr_unet18_rpr"])
def test_openvino_outputs_outlive_the_next_call(name):
    """The backend reads its output from the infer request's buffer without copying it: what
    a call returned must not change when the next call of the same shape reuses that buffer."""
    backend = Predictor(trained_looking(name), device="cpu", backend="openvino").backend
    x = np.random.default_rng(4).random((4, 3, 64, 64), dtype=np.float32)
    first = backend.forward(x[:2])
    kept = first.copy()
    second = backend.forward(x[2:])
    np.testing.assert_array_equal(first, kept)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("backend", ["torch", pytest.param("openvino", marks=needs_openvino)])
@pytest.mark.parametrize("camera", [None, "cie1964"])
@pytest.mark.parametrize("name", ["mxr_unet18", "mxr_unet18_rpr", "rpr2"])
def test_a_block_of_several_calls_equals_its_calls_one_by_one(backend, camera, name):
    """Predictor.predict has the backend compute each full call in place in the block's
    array; the values must be those of the calls made alone."""
    camera_response = resolve_camera(camera) if camera and name.endswith("rpr") else None
    predictor = Predictor(
        trained_looking(name),
        device="cpu",
        backend=backend,
        camera=camera_response,
        batch_size=2,
    )
    x = np.random.default_rng(5).random((5, 3, 64, 64), dtype=np.float32)
    together = predictor.predict(x)
    alone = np.concatenate([predictor.predict(x[:2]), predictor.predict(x[2:])])
    np.testing.assert_array_equal(together, alone)
    assert together.flags["C_CONTIGUOUS"] and np.isfinite(together).all()


@pytest.mark.parametrize("backend", ["torch", pytest.param("openvino", marks=needs_openvino)])
def test_forward_fills_an_out_array_of_any_layout(backend):
    predictor = Predictor(trained_looking("mxr_unet18_rpr"), device="cpu", backend=backend)
    x = np.random.default_rng(6).random((2, 3, 40, 40), dtype=np.float32)
    expected = predictor.backend.forward(x)
    for out in (
        np.empty((2, 31, 40, 40), np.float32),
        np.empty((2, 40, 40, 31), np.float32).transpose(0, 3, 1, 2),  # not C-contiguous
        np.empty((2, 31, 40, 40), np.float64),
    ):
        assert predictor.backend.forward(x, out=out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_in_place_finish_without_a_camera_equals_the_projection():
    model = Predictor(trained_looking("mxr_unet18_rpr"), device="cpu", backend="torch").model
    x = torch.rand(2, 3, 32, 32)
    spectra = torch.randn(2, 31, 32, 32)
    for camera in (None, resolve_camera("cie1964").normalised):
        model.set_camera(camera)
        expected = model.project_current(spectra.clone(), x)
        scratch = spectra.clone()
        got = model.project_current(scratch, x, in_place=True)
        assert torch.equal(got, expected) and expected.min() >= 0
        assert (got.data_ptr() == scratch.data_ptr()) == (camera is None)


@needs_openvino
def test_openvino_converts_once_per_weights_and_camera(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("GEOHSR_CACHE_DIR", str(tmp_path / "cache"))
    first = Predictor(trained_looking("mxr_unet18_rpr"), device="cpu", backend="openvino")
    assert "converting the model for OpenVINO" in capfd.readouterr().err
    ir = first.backend.ir_path
    assert ir.is_file() and ir.with_suffix(".bin").is_file()
    assert ir.parent.parent == tmp_path / "cache"
    stamp = ir.stat().st_mtime_ns
    again = Predictor(trained_looking("mxr_unet18_rpr"), device="cpu", backend="openvino")
    assert again.backend.ir_path == ir and ir.stat().st_mtime_ns == stamp
    assert "converting" not in capfd.readouterr().err
    camera = resolve_camera("cie1964")
    known = Predictor(
        trained_looking("mxr_unet18_rpr"), device="cpu", backend="openvino", camera=camera
    )
    assert known.backend.ir_path != ir  # the camera's base is part of the converted model
    assert core_fingerprint(first.model)[:20] in ir.name  # the prepared model's weights
    other = Predictor(trained_looking("mxr_unet18_rpr", seed=5), device="cpu", backend="torch")
    assert core_fingerprint(other.model) != core_fingerprint(first.model)


@needs_openvino
def test_unwritable_cache_is_a_model_error_naming_the_variable(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GEOHSR_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(ModelError, match="GEOHSR_CACHE_DIR"):
        Predictor(trained_looking("rpr2"), device="cpu", backend="openvino")


@needs_openvino
def test_cli_and_accessor_with_openvino(tmp_path):
    scene = write_raster(tmp_path / "in.tif", gradient_rgb(150, 170), nodata=0)
    weights = save_model(trained_looking("mxr_unet18_rpr"), tmp_path / "w.safetensors")
    out_ov, out_torch = tmp_path / "ov.tif", tmp_path / "torch.tif"
    runner = CliRunner()
    for out, backend in ((out_ov, "openvino"), (out_torch, "torch")):
        result = runner.invoke(
            cli,
            ["reconstruct", str(scene), str(out), "--weights", str(weights), "--tile", "64",
             "--device", "cpu", "--backend", backend, "--precision", "fp32",
             "--precision-bits", "0"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    with rasterio.open(out_ov) as ov, rasterio.open(out_torch) as ref:
        assert ov.tags()["INFERENCE"] == "openvino fp32"
        assert ref.tags()["INFERENCE"] == "torch fp32"
        got, expected = ov.read(), ref.read()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * np.nanmax(expected))

    # the accessor gives the CLI's values bit for bit with the same backend
    options = {**SETTINGS, "backend": "openvino"}
    reconstruct_scene(
        scene, tmp_path / "cli.zarr", weights=weights, options=ReconstructOptions(**options)
    )
    cli_cube = xr.open_zarr(tmp_path / "cli.zarr", decode_coords="all")["reflectance"]
    rgb = rioxarray.open_rasterio(scene, chunks={"y": 60, "x": 80}, masked=True)
    cube = rgb.hsr.reconstruct(model=str(weights), chunk_size=96, **options)
    assert cube.attrs["inference"] == "openvino fp32"
    np.testing.assert_array_equal(cube.compute().values, cli_cube.values)


def test_backends_command_lists_what_auto_chooses(monkeypatch):
    monkeypatch.setenv("GEOHSR_BACKEND", "torch")
    result = CliRunner().invoke(cli, ["backends"])
    assert result.exit_code == 0, result.output
    assert "cpu (CPU):" in result.output and "  torch: fp32" in result.output
    auto = backends.resolve_precision("auto", "torch", "cpu")  # bf16 on AVX512-BF16 CPUs
    assert f"  auto: torch {auto}" in result.output
    assert "converted models cache:" in result.output


@needs_openvino
def test_chunks_from_different_backends_are_never_published_as_one(tmp_path):
    """Cluster chunks computed by workers that resolve to different backends (or a resume
    elsewhere) are refused at publishing; one backend everywhere is what the cube says."""
    from geohsr.inference.chunk_tasks import ChunkJob, write_chunk
    from geohsr.inference.model_cache import PredictorSpec
    from geohsr.io.output import partial_path
    from geohsr.tiling import make_grid, make_plan
    from geohsr.tiling.chunks import make_chunks

    scene = write_raster(tmp_path / "in.tif", gradient_rgb(120, 100), nodata=0)
    weights = save_model(trained_looking("mxr_unet18"), tmp_path / "w.safetensors")
    settings = dict(tile=64, overlap=16, batch_size=2, device="cpu", threads=1, sidecars=False)
    options = ReconstructOptions(**settings)

    def runner_with(backends):
        def run(prepared, progress):
            chunks = make_chunks(120, 100, 64)
            for index, chunk in enumerate(chunks):
                spec = PredictorSpec(
                    str(weights), device="cpu", backend=backends[index % 2], precision="fp32"
                )
                write_chunk(ChunkJob.for_scene(prepared, spec), chunk)
            bands = make_plan(make_grid(120, 100, 64, 16), 1).bands
            prepared.writer.finish_chunks({}, chunks, bands_total=len(bands))
            return SimpleNamespace(output=out)

        return run

    out = tmp_path / "mixed.zarr"
    with pytest.raises(GeoHSRError, match="different inference settings"):
        reconstruct_scene(scene, out, weights=weights, options=options,
                          runner=runner_with(("torch", "openvino")))  # fmt: skip
    assert partial_path(out).exists() and not out.exists()

    out = tmp_path / "openvino.zarr"  # this process would say torch: the workers' value wins
    torch_here = ReconstructOptions(**settings, backend="torch")
    reconstruct_scene(
        scene, out, weights=weights, options=torch_here, runner=runner_with(("openvino",) * 2)
    )
    assert xr.open_zarr(out).attrs["inference"] == "openvino fp32"


def test_accessor_tasks_refuse_a_backend_other_than_the_cube_says(tmp_path):
    from geohsr.inference.model_cache import PredictorSpec, resolve_predictor

    weights = save_model(trained_looking("rpr2"), tmp_path / "w.safetensors")
    spec = PredictorSpec(str(weights), device="cpu", backend="torch", precision="fp32")
    assert resolve_predictor(spec).inference == "torch fp32"
    assert resolve_predictor(replace(spec, expected_inference="torch fp32")) is not None
    with pytest.raises(ModelError, match="metadata .* says openvino fp32"):
        resolve_predictor(replace(spec, expected_inference="openvino fp32"))


def test_batch_refuses_a_precision_before_starting_local_workers(tmp_path):
    pytest.importorskip("distributed")
    scene = write_raster(tmp_path / "in.tif", gradient_rgb(40, 40))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["batch", str(scene), "-o", str(out), "--n-workers", "1", "--device", "cpu",
         "--backend", "torch", "--precision", "fp16"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--precision fp16 is not available" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_conversion_sends_no_openvino_telemetry(tmp_path):
    """geohsr's conversions decline OpenVINO's usage telemetry (it forks a sender in a
    background thread, which deadlocked against OpenBLAS) and leave the environment as it was."""
    pytest.importorskip("openvino_telemetry")
    code = (
        "import os\n"
        "from geohsr.inference.backends.openvino_backend import telemetry_off\n"
        "from openvino.tools.ovc.telemetry_utils import init_ovc_telemetry\n"
        "with telemetry_off():\n"
        "    consent = init_ovc_telemetry().consent\n"
        "print(consent, 'CI' in os.environ)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["HOME"] = str(tmp_path)  # no consent file: OpenVINO's default is to send
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
