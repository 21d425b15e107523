"""End-to-end fine-tuning of a tiny model on every data kind, resume, export, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from training_fixtures import (
    smooth_cube,
    write_arad1k,
    write_cube_tif,
    write_fake_vgg16,
    write_ntire2020,
    write_tile_pair,
)

from geohsr.cli.main import cli
from geohsr.exceptions import TrainingError
from geohsr.models import create_model
from geohsr.models.residual import RECOMMENDED_CHROMA_FLOOR
from geohsr.models.weights import load_weights, read_metadata, save_weights
from geohsr.training.config import TrainConfig
from geohsr.training.trainer import Trainer, build_model, train

CAVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cave"
TINY = dict(width=0.125, crop=32, batch_size=2, progress=False, augment=False, lr=3e-3)


def _config(tmp_path: Path, data: list[str], **overrides) -> TrainConfig:
    values = {**TINY, "loss": "mse", "steps": 12, "val_every": 100, **overrides}
    return TrainConfig(data=data, out_dir=str(tmp_path / "run"), **values)


def _decreased(losses: list[float]) -> bool:
    return float(np.mean(losses[-3:])) < float(np.mean(losses[:3]))


@pytest.fixture(scope="module")
def cubes_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cubes")
    for i in range(3):
        write_cube_tif(folder / f"scene{i}.tif", smooth_cube(48, 48, seed=i))
    return folder


def _data_spec(kind: str, root: Path) -> str:
    if kind == "ntire2020":
        return f"ntire2020:{write_ntire2020(root, train=2, valid=1)}"
    if kind == "arad1k":
        return f"arad1k:{write_arad1k(root, train=2, valid=1)}"
    rgb, hs = write_tile_pair(root, size=72)
    return f"tiles:{rgb},{hs}"


@pytest.mark.parametrize("kind", ["ntire2020", "arad1k", "tiles"])
def test_loss_decreases_on_each_paired_layout(tmp_path, kind):
    torch.set_num_threads(1)
    result = train(_config(tmp_path, [_data_spec(kind, tmp_path / "data")]))
    assert result.step == 12 and _decreased(result.losses), result.losses
    assert result.best is not None and np.isfinite(result.best["mrae"])
    assert result.weights is not None and result.weights.is_file()


def test_loss_decreases_on_spectral_cubes_with_perceptual_loss(tmp_path, cubes_dir):
    vgg = write_fake_vgg16(tmp_path / "vgg.npz")
    config = _config(
        tmp_path,
        [f"cubes:{cubes_dir}"],
        loss="perceptual",
        vgg_weights=str(vgg),
        vgg_pools=(1, 2),
        feature_weights=(3.0, 9.0),
        steps=10,
        val_scenes=["scene2"],
        degrade_prob=0.5,
    )
    result = train(config)
    assert _decreased(result.losses), result.losses


@pytest.mark.skipif(not CAVE.is_dir(), reason="shared CAVE data not available")
def test_cave_subset_fine_tunes(tmp_path):
    data = [f"cave:{CAVE / 'flowers_ms.tif'}", f"cave:{CAVE / 'beads_ms.tif'}"]
    result = train(_config(tmp_path, data, val_scenes=["beads_ms"], crop=48, val_every=6))
    assert _decreased(result.losses), result.losses
    meta = read_metadata(result.weights)
    assert meta["val_scenes"] == ["beads_ms"] and meta["train_scenes"] == ["flowers_ms"]


def test_resume_continues_the_same_curve(tmp_path, cubes_dir):
    common = dict(steps=8, camera_mix=0.5, degrade_prob=0.5, augment=True, val_every=3)
    straight = train(_config(tmp_path / "a", [f"cubes:{cubes_dir}"], **common))
    first = train(_config(tmp_path / "b", [f"cubes:{cubes_dir}"], stop_after=4, **common))
    assert first.stopped_early and first.step == 4
    second = train(_config(tmp_path / "b", [f"cubes:{cubes_dir}"], resume=True, **common))
    assert first.losses + second.losses == straight.losses
    assert second.best["mrae"] == straight.best["mrae"]
    with pytest.raises(TrainingError, match="settings changed"):
        Trainer(
            _config(tmp_path / "b", [f"cubes:{cubes_dir}"], resume=True, **{**common, "lr": 1e-2})
        )


def test_export_metadata_init_and_freeze(tmp_path, cubes_dir):
    config = _config(
        tmp_path,
        [f"cubes:{cubes_dir}"],
        steps=4,
        cameras=["cie1964"],
        export_name="tiny_cubes",
        val_scenes=["scene0"],  # a random split would hold out scene2
    )
    result = train(config)
    meta = read_metadata(result.weights)
    assert result.weights.name == "tiny_cubes.safetensors"
    assert meta["camera"]["cameras"][0]["name"] == "cie1964"
    assert len(meta["camera"]["cameras"][0]["css_rgb"][0]) == 31
    assert meta["recipe"]["loss"] == "mse" and meta["recipe"]["total_steps"] == 4
    assert set(meta["metrics"]["validation"]) >= {"mrae", "rmse", "psnr", "sam"}
    assert meta["training_data"] == [f"cubes:{cubes_dir.name}"]  # no machine path
    log = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert {e["event"] for e in log} == {"train", "val"}
    # the last step trained with the schedule's final rate (max / div_factor / 1e4, torch's
    # OneCycleLR), not the rate after it
    final_lr = config.lr / config.div_factor / 1e4
    assert [e for e in log if e["event"] == "train"][-1]["lr"] == pytest.approx(final_lr)
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 0

    frozen = Trainer(
        _config(
            tmp_path / "f",
            [f"cubes:{cubes_dir}"],
            steps=2,
            init=str(result.weights),
            freeze_encoder=True,
        )
    )
    # without --val-scenes, the scenes the --init weights held out stay held out
    assert [s.name for s in frozen.val_scenes] == ["scene0"]
    assert "scene0" not in [s.name for s in frozen.train_scenes]
    before = {k: v.clone() for k, v in frozen.model.encoder.state_dict().items()}
    outcome = frozen.run()
    after = frozen.model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN stats
    assert read_metadata(outcome.weights)["init"]["weights"] == "tiny_cubes.safetensors"


def test_evaluate_command_prints_known_metrics(tmp_path):
    # Fixture: NTIRE layout whose cube is 0.5 on the left half and 0.25 on the right half;
    # the model predicts 0.4 everywhere (a linear model with zero weights and bias 0.4).
    root = tmp_path / "ntire"
    cube = np.full((31, 8, 10), 0.5, np.float32)
    cube[:, :, 5:] = 0.25
    from training_fixtures import clean_rgb, write_image, write_mat_v73

    write_mat_v73(root / "NTIRE2020_Validation_Spectral" / "ARAD_HS_0451.mat", cube, bands=False)
    write_image(root / "NTIRE2020_Validation_Clean" / "ARAD_HS_0451_clean.png", clean_rgb(cube))
    model = create_model("linear")
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(0.4)
    weights = save_weights(model, tmp_path / "const.safetensors", {"camera": None})
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--weights",
            str(weights),
            "--data",
            f"ntire2020:{root}",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    mean = report["mean"]
    assert mean["mrae"] == pytest.approx((0.1 / 0.5 + 0.15 / 0.25) / 2)  # 0.4
    assert mean["rmse"] == pytest.approx(np.sqrt((0.01 + 0.0225) / 2))  # 0.12748
    assert mean["psnr"] == pytest.approx(10 * np.log10(1 / 0.01625))  # 17.89 dB
    assert mean["sam"] == pytest.approx(0.0, abs=1e-5)
    assert "ARAD_HS_0451" in result.output and "0.4000" in result.output
    csv_out = tmp_path / "report.csv"
    CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--weights",
            str(weights),
            "--data",
            f"ntire2020:{root}",
            "--out",
            str(csv_out),
            "--device",
            "cpu",
        ],
    )
    assert csv_out.read_text().splitlines()[0].startswith("name,mrae,mrae_bright,rmse,psnr,sam")


def test_finetune_command_and_resume_from_saved_config(tmp_path, cubes_dir):
    out = tmp_path / "cli_run"
    args = ["--steps", "4", "--val-scenes", "scene0", "--stop-after", "2"]
    first = _finetune(cubes_dir, out, *args)
    assert first.exit_code == 0, first.output
    assert "stopped early" in first.output
    second = CliRunner().invoke(cli, ["finetune", "--out", str(out), "--resume", "--quiet"])
    assert second.exit_code == 0, second.output
    assert "finished at step 4/4" in second.output
    model, meta = load_weights(out / "mxr_unet18_finetuned.safetensors")
    assert meta["val_scenes"] == ["scene0"]
    bad = CliRunner().invoke(cli, ["finetune", "--out", str(tmp_path / "x"), "--data", "hdf:/x"])
    assert bad.exit_code == 2 and "KIND:PATH" in bad.output


def test_build_camera_excludes_held_out_cameras_from_list_and_mixtures():
    from geohsr.spectral.cameras import jiang28_path
    from geohsr.training.trainer import build_camera

    if not jiang28_path().is_file():
        pytest.skip("camera_sensitivities_jiang28.npz not available")
    config = TrainConfig(
        data=[],
        out_dir="",
        cameras=["cie1964", "jiang28"],
        exclude_cameras=["nikon d50"],
        camera_mix=0.5,
    )
    sampler = build_camera(config)
    names = [c.name for c in sampler.cameras]
    assert len(names) == 28 and "Nikon D50" not in names and names[0] == "cie1964"
    assert [c.name for c in sampler.mixture_pool] == names


def test_weights_metadata_holds_no_machine_paths():
    from geohsr.models.weights import portable_data_spec

    assert portable_data_spec("cave:/home/me/data/cave") == "cave:cave"
    assert portable_data_spec("tiles:/a/b/rgb.tif,/a/b/hs.tif") == "tiles:rgb.tif,hs.tif"


def test_residual_model_trains_resumes_and_exports_a_portable_camera_aware_file(
    tmp_path, cubes_dir
):
    common = dict(
        model="mxr_unet18_rpr",
        loss="mrae",
        mrae_floor=0.01,
        steps=6,
        val_every=3,
        quantize_prob=0.5,
        known_camera_prob=0.5,
        val_scenes=["scene2"],
    )
    straight = train(_config(tmp_path / "a", [f"cubes:{cubes_dir}"], **common))
    first = train(_config(tmp_path / "b", [f"cubes:{cubes_dir}"], stop_after=3, **common))
    second = train(_config(tmp_path / "b", [f"cubes:{cubes_dir}"], resume=True, **common))
    assert first.losses + second.losses == straight.losses
    meta = read_metadata(straight.weights)
    assert str(tmp_path) not in json.dumps(meta) and meta["training_data"] == [
        f"cubes:{Path(cubes_dir).name}"
    ]
    model, _ = load_weights(straight.weights)
    assert model.reference_spectra.abs().sum() > 0 and model.generic_base_weight.abs().sum() > 0
    # the validation ran both without and with the camera
    names = [image["name"] for image in meta["metrics"]["validation_images"]]
    assert any(n.endswith("+known") for n in names) and not all(n.endswith("+known") for n in names)


def test_chroma_floor_default_for_new_residual_models_and_kept_from_init(tmp_path):
    new, _ = build_model(_config(tmp_path, [], model="mxr_unet18_rpr"))
    assert new.chroma_floor == pytest.approx(RECOMMENDED_CHROMA_FLOOR)
    assert new.geohsr_config["chroma_floor"] == pytest.approx(RECOMMENDED_CHROMA_FLOOR)
    old = save_weights(create_model("mxr_unet18_rpr", width=0.125), tmp_path / "old.safetensors")
    kept, _ = build_model(_config(tmp_path, [], model="mxr_unet18_rpr", init=str(old)))
    assert kept.chroma_floor == 0.0  # --init keeps the weights' own floor
    set_, _ = build_model(
        _config(tmp_path, [], model="mxr_unet18_rpr", init=str(old), chroma_floor=0.01)
    )
    assert set_.chroma_floor == 0.01 and set_.geohsr_config["chroma_floor"] == 0.01
    with pytest.raises(TrainingError, match="chroma-floor"):
        build_model(_config(tmp_path, [], model="mxr_unet18", chroma_floor=0.01))


def test_level_input_for_new_models_and_grown_from_init(tmp_path, cubes_dir):
    new, _ = build_model(_config(tmp_path, [], model="mxr_unet18_rpr", level_input=0.1))
    assert new.level_input == 0.1 and new.net.mean.shape[1] == 4
    plain, _ = build_model(_config(tmp_path, [], model="mxr_unet18_rpr"))
    assert plain.level_input == 0.0 and plain.net.mean.shape[1] == 3
    old = save_weights(plain, tmp_path / "old.safetensors")
    common = dict(model="mxr_unet18_rpr", init=str(old), refit_base=True, loss="mrae", steps=4)
    grown = train(_config(tmp_path, [f"cubes:{cubes_dir}"], level_input=0.1, **common))
    model, meta = load_weights(grown.weights)
    assert model.level_input == 0.1 and meta["config"]["level_input"] == 0.1
    assert model.net.encoder.stem[0][0].weight[:, 3].abs().sum() > 0  # the new channel trained
    with pytest.raises(TrainingError, match="level-input"):
        build_model(_config(tmp_path, [], model="mxr_unet18", level_input=0.1))


def test_quantize_cell_is_trained_and_recorded_and_exact_training_turns_it_off(tmp_path, cubes_dir):
    plain, _ = build_model(_config(tmp_path, [], model="mxr_unet18_rpr"))
    assert not plain.quantization_cell and "quantization_cell" not in plain.geohsr_config
    common = dict(model="mxr_unet18_rpr", refit_base=True, loss="mrae", steps=2)
    result = train(_config(tmp_path / "cell", [f"cubes:{cubes_dir}"], quantize_cell=True, **common))
    model, meta = load_weights(result.weights)
    assert model.quantization_cell and meta["config"]["quantization_cell"] is True
    assert model.input_step == 0.0  # the step belongs to the input, not to the weights
    again, _ = build_model(_config(tmp_path, [], model="mxr_unet18_rpr", init=str(result.weights)))
    assert not again.quantization_cell and again.geohsr_config["quantization_cell"] is False
    with pytest.raises(TrainingError, match="quantize-cell"):
        build_model(_config(tmp_path, [], model="mxr_unet18", quantize_cell=True))


def _finetune(cubes_dir: Path, out: Path, *extra: str):
    args = [
        "finetune",
        "--data",
        f"cubes:{cubes_dir}",
        "--out",
        str(out),
        "--width",
        "0.125",
        "--crop",
        "32",
        "--batch-size",
        "2",
        "--loss",
        "mse",
        "--quiet",
        *extra,
    ]
    return CliRunner().invoke(cli, args)


def test_finetune_refuses_a_folder_that_holds_a_run_and_resume_refuses_other_settings(
    tmp_path, cubes_dir
):
    out = tmp_path / "run"
    first = _finetune(cubes_dir, out, "--steps", "6", "--stop-after", "2", "--val-every", "100")
    assert first.exit_code == 0, first.output
    log_before = (out / "metrics.jsonl").read_text()

    again = _finetune(cubes_dir, out, "--steps", "6", "--val-every", "100")  # no --resume
    assert again.exit_code == 2
    assert "already holds a training run (it reached step 2); pass --resume" in again.stderr
    assert (out / "metrics.jsonl").read_text() == log_before  # nothing overwritten

    other = _finetune(cubes_dir, out, "--resume", "--steps", "6", "--lr", "0.01")
    assert other.exit_code == 2
    assert "cannot resume" in other.stderr and "--lr (the run has 0.001, given 0.01)" in (
        other.stderr
    )
    assert "--steps" not in other.stderr  # the same value as the run's is no change

    resumed = _finetune(cubes_dir, out, "--resume", "--steps", "6", "--val-every", "2")
    assert resumed.exit_code == 0, resumed.output
    assert "finished at step 6/6" in resumed.stdout
    assert json.loads((out / "config.json").read_text())["val_every"] == 2  # a session setting
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # validated where the first session stopped, then every 2 steps as this one asked
    assert [e["step"] for e in log if e["event"] == "val"] == [2, 4, 6]


def test_a_folder_without_a_checkpoint_starts_afresh_and_a_resume_drops_later_events(
    tmp_path, cubes_dir
):
    out = tmp_path / "run"
    out.mkdir()
    metrics = out / "metrics.jsonl"
    (out / "config.json").write_text("{}")  # a run killed before its first checkpoint
    metrics.write_text('{"event": "train", "step": 10, "loss": 9.0}\n{"event": "tr')
    first = _finetune(cubes_dir, out, "--steps", "4", "--stop-after", "2", "--val-every", "100")
    assert first.exit_code == 0, first.output

    def events() -> list[dict]:
        return [json.loads(line) for line in metrics.read_text().splitlines()]

    assert [e["step"] for e in events() if e["event"] == "train"] == [2]
    with metrics.open("a") as fh:  # logged by a session stopped after its checkpoint
        fh.write('{"event": "train", "step": 3, "loss": 99.0}\n')
    resumed = _finetune(cubes_dir, out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert [e["step"] for e in events() if e["event"] == "train"] == [2, 4]
    assert 99.0 not in [e.get("loss") for e in events()]


def test_a_short_session_logs_its_steps_and_a_finished_run_resumed_changes_nothing(
    tmp_path, cubes_dir
):
    out = tmp_path / "run"
    short = _finetune(cubes_dir, out, "--steps", "4", "--time-limit", "0.0001")
    assert short.exit_code == 0 and "stopped early" in short.stdout, short.output
    metrics = out / "metrics.jsonl"
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps and steps[0] >= 1  # the steps it trained are on record
    assert _finetune(cubes_dir, out, "--resume").exit_code == 0
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = _finetune(cubes_dir, out, "--resume")
    assert again.exit_code == 0 and "finished at step 4/4" in again.stdout
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
