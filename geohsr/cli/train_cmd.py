"""`geohsr finetune` (train / fine-tune a model) and `geohsr evaluate` (metrics on data)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from geohsr._format import setting_text
from geohsr.cli.main import OUTPUT_META

DATA_HELP = (
    "KIND:PATH, repeatable to mix sources. Kinds: cave/cubes (spectral cubes, RGB simulated), "
    "ntire2020, ntire2020-realworld, arad1k (NTIRE layouts), tiles (RGB.tif,HYPER.tif or a "
    "folder of <name>_rgb.tif + <name>_hs.tif), synthetic-aerial:COUNT (seeded aerial scenes "
    "painted with measured earthlib spectra), synthetic-aerial-varied:COUNT (the same with "
    "spectral variability)."
)
CAMERA_HELP = (
    "Camera for simulated RGB, repeatable (one drawn per sample): cie1964, jiang28 (all 28), "
    "a camera name such as 'Canon 5DMarkII', or a CSV wavelength,r,g,b."
)


def _csv_list(text: str | None, kind: type = str) -> list:
    return [kind(v.strip()) for v in text.split(",") if v.strip()] if text else []


def _checked_tilt(value: float) -> float:
    """``--spectral-tilt`` checked before any run folder is made."""
    from geohsr.exceptions import InputError
    from geohsr.training.camera import check_spectral_tilt

    try:
        return check_spectral_tilt(value)
    except InputError as err:
        raise click.BadParameter(str(err)) from err


#: finetune parameters whose config field has another name (the rest share their name)
CONFIG_FIELDS = {"spectral_shift": "spectral_shift_nm", "no_augment": "augment", "no_amp": "amp"}
#: how a finetune parameter's value becomes its config field's value (the rest: as given)
CONVERSIONS = {
    "data": list,
    "feature_weights": lambda text: tuple(_csv_list(text, float)),
    "vgg_pools": lambda text: tuple(_csv_list(text, int)),
    "jpeg_quality": lambda text: tuple(_csv_list(text, int)),
    "exposure": lambda text: tuple(_csv_list(text, float)),
    "val_scenes": _csv_list,
    "cameras": lambda names: list(names) or ["cie1964"],
    "exclude_cameras": list,
    "no_augment": lambda flag: not flag,
    "no_amp": lambda flag: not flag,
}
#: finetune parameters that only steer a session (see ``session`` in :func:`finetune`)
SESSION_PARAMS = frozenset(
    {
        "out_dir",
        "resume",
        "time_limit_min",
        "stop_after",
        "workers",
        "device",
        "quiet",
        "checkpoint_every",
        "cache_gb",
    }
)


def _config_from_options(options: dict, session: dict):
    """The :class:`~geohsr.training.config.TrainConfig` of a new run from finetune's
    options (``session``: the session fields)."""
    from geohsr.exceptions import InputError
    from geohsr.training.config import TrainConfig

    if not options["data"]:
        raise InputError("no training data; pass --data KIND:PATH (e.g. cave:DIR)")
    values = {
        CONFIG_FIELDS.get(name, name): CONVERSIONS.get(name, lambda value: value)(value)
        for name, value in options.items()
        if name not in SESSION_PARAMS
    }
    return TrainConfig(**values, **session)


def _resumed_config(saved, options: dict, session: dict):
    """The saved config of the run being resumed, with this session's fields and the
    session-only settings given on the command line (``--val-every``, ``--export-name``).
    Any other setting given on the command line must equal the run's:
    :class:`~geohsr.exceptions.InputError` names those that differ (a resume keeps the
    settings its run started with)."""
    from geohsr.exceptions import InputError
    from geohsr.training.config import SESSION_FIELDS, TrainConfig

    ctx = click.get_current_context()
    given = [
        name
        for name in options
        if name not in SESSION_PARAMS
        and ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    asked = _config_from_options({**options, "data": options["data"] or saved.data}, session)
    asked_values, saved_values = asked.to_dict(), saved.to_dict()
    values = saved_values | {k: v for k, v in session.items() if k in SESSION_FIELDS}
    differ = []
    for name in given:
        field = CONFIG_FIELDS.get(name, name)
        new, old = asked_values[field], saved_values[field]
        if field in SESSION_FIELDS:
            values[field] = new
        elif json.dumps(new) != json.dumps(old):
            what = f"{field} " if field != name else ""  # --no-amp sets amp
            was, now = (setting_text(value, unset="unset") for value in (old, new))
            flag = "--" + name.replace("_", "-")
            differ.append(f"{flag} (the run has {what}{was}, given {what}{now})")
    if differ:
        raise InputError(
            f"cannot resume {session['out_dir']} with other settings: {'; '.join(differ)}; "
            "drop them to continue the run as it started, or start a new --out folder"
        )
    return TrainConfig.from_dict(values)


@click.command()
@click.option("--data", "data", multiple=True, help=DATA_HELP)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder: checkpoints, metrics.jsonl, loss_curve.png, exported weights.",
)
@click.option("--model", default="mxr_unet18", show_default=True, help="Registry model name.")
@click.option("--width", default=1.0, show_default=True, help="Channel multiplier of the model.")
@click.option("--init", "init", default=None, help="Start from these weights (name or path).")
@click.option(
    "--int8-adapt",
    "int8_adapt",
    is_flag=True,
    help="Adapt the --init weights to --precision int8 instead of training: the network, with "
    "its INT8 arithmetic simulated, learns to reproduce the float --init model on the "
    "rendered crops (needs NNCF). Writes OUT/int8/<init file name>; put that int8 folder "
    "beside the --init file for --precision int8 to use it. Uses --data, the camera and "
    "exposure options, --steps, --lr (default here 5e-5), --batch-size, --seed.",
)
@click.option("--freeze-encoder", is_flag=True, help="Train the decoder only.")
@click.option(
    "--chroma-floor",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Residual models: mean intensity (white = 1) below which the network sees neutral "
    "chromaticity instead of quantisation noise [0.5/255 for a new model; --init keeps its own].",
)
@click.option(
    "--level-input",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Residual models: show the network each pixel's brightness in 8-bit levels (log "
    "scale), saturating at this intensity (white = 1), e.g. 0.125; --init weights without one "
    "grow the input channel with zero weights [none for a new model; --init keeps its own].",
)
@click.option(
    "--contrast-input",
    type=click.IntRange(min=1),
    default=None,
    help="Residual models: also show the network each pixel's brightness relative to its "
    "N x N neighbourhood (N odd, e.g. 7; log ratio, so exposure-equivariant); --init weights "
    "without one grow the input channel with zero weights [none for a new model; --init keeps "
    "its own].",
)
@click.option(
    "--loss",
    type=click.Choice(["perceptual", "mrae", "mse", "l1"]),
    default="perceptual",
    show_default=True,
)
@click.option(
    "--pixel-weight",
    default=100.0,
    show_default=True,
    help="Weight of the pixel term in the perceptual loss (MXR paper variant: 10).",
)
@click.option(
    "--pixel-loss",
    type=click.Choice(["mse", "mrae"]),
    default="mse",
    show_default=True,
    help="Pixel term of the perceptual loss (paper: mse; mrae weighs dark regions fairly).",
)
@click.option(
    "--gram-factor",
    default=5e3,
    show_default=True,
    help="Scale of the Gram (style) terms: gram_factor * w_i^2 * L1(Gram).",
)
@click.option("--vgg-weights", default=None, help="VGG16 weights (.npz or torchvision .pth).")
@click.option(
    "--vgg-pools",
    default="3,4,5",
    show_default=True,
    help="Features before these VGG max-pools (1-5).",
)
@click.option("--feature-weights", default="3,9,2", show_default=True)
@click.option("--camera", "cameras", multiple=True, help=CAMERA_HELP)
@click.option(
    "--exclude-camera",
    "exclude_cameras",
    multiple=True,
    help="Leave this camera out (e.g. --camera jiang28 --exclude-camera 'Nikon D50').",
)
@click.option(
    "--camera-mix",
    default=0.0,
    show_default=True,
    help="Probability of a random convex mixture of 2-3 of the training cameras.",
)
@click.option(
    "--spectral-shift",
    default=0.0,
    show_default=True,
    help="Maximum random shift of the camera response, nm.",
)
@click.option(
    "--spectral-tilt",
    type=float,
    callback=lambda ctx, param, value: _checked_tilt(value),
    default=0.0,
    show_default=True,
    help="Std of a random smooth tilt and bow (log scale, across 400-700 nm) applied to "
    "each sample's spectra before rendering: spectra beyond the training scenes' (0 to 1; "
    "0: off).",
)
@click.option(
    "--wb-jitter",
    default=0.0,
    show_default=True,
    help="Std of the log white-balance error per channel.",
)
@click.option(
    "--degrade-prob",
    default=0.0,
    show_default=True,
    help="Fraction of simulated samples with noise + demosaic + JPEG.",
)
@click.option("--jpeg-quality", default="70,95", show_default=True, help="JPEG quality range.")
@click.option(
    "--exposure",
    default="0.05,1.5",
    show_default=True,
    help="Range of the exposure k of simulated RGB, drawn log-uniformly (k = 1: a white "
    "reflector reads 1); the target is scaled by k.",
)
@click.option(
    "--quantize-prob",
    default=0.0,
    show_default=True,
    help="Fraction of simulated samples quantised to 8 bits.",
)
@click.option(
    "--quantize-cell/--exact-projection",
    default=False,
    show_default=True,
    help="Residual models: project known-camera samples onto the spectra rendering to the "
    "point of the 8-bit quantisation cell of their RGB (half a level either way) nearest the "
    "network's own rendering, as reconstruct then does for 8-bit input with these weights, "
    "instead of onto its exact value.",
)
@click.option(
    "--known-camera-prob",
    default=0.5,
    show_default=True,
    help="Residual models: fraction of samples whose camera the model is told (--camera use).",
)
@click.option(
    "--refit-base/--keep-base",
    default=None,
    help="Residual models: re-sample the reference spectra from --data and refit the classical "
    "branch over --camera [refit for a new model, keep with --init].",
)
@click.option(
    "--mrae-floor",
    default=1e-3,
    show_default=True,
    help="--loss mrae: target values below this are divided by it (relative to exposure).",
)
@click.option("--crop", default=128, show_default=True, help="Training crop side, pixels.")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--no-augment", is_flag=True, help="No flips/rotation/zoom.")
@click.option("--val-fraction", default=0.2, show_default=True)
@click.option(
    "--val-scenes",
    default=None,
    help="Comma-separated validation scene names [with --init: the scenes those weights "
    "held out, else a random --val-fraction].",
)
@click.option("--steps", type=int, default=None, help="Training steps (or --epochs).")
@click.option("--epochs", type=int, default=None, help="Epochs (crops covering the data once).")
@click.option("--lr", default=1e-3, show_default=True, help="Maximum one-cycle learning rate.")
@click.option("--encoder-lr-factor", default=0.1, show_default=True)
@click.option("--weight-decay", default=1e-3, show_default=True)
@click.option("--clip-grad", default=1.0, show_default=True, help="Max gradient norm (0: off).")
@click.option("--seed", default=0, show_default=True)
@click.option("--val-every", type=int, default=None, help="Validate every N steps (1 epoch).")
@click.option("--checkpoint-every", default=50, show_default=True, help="Steps between saves.")
@click.option(
    "--time-limit",
    "time_limit_min",
    type=float,
    default=None,
    help="Minutes for this session; stops cleanly (resume later with --resume).",
)
@click.option(
    "--stop-after",
    type=int,
    default=None,
    help="End this session at this global step (resume later).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out with its saved settings (others given are refused); "
    "--time-limit, --stop-after, --workers, --device, --checkpoint-every, --cache-gb, "
    "--val-every, --export-name and --quiet may change. Without it, a --out folder that "
    "holds a run is refused.",
)
@click.option("--workers", default=0, show_default=True, help="Data loader processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option(
    "--no-amp", is_flag=True, help="Disable mixed precision (CUDA; bfloat16 on capable CPUs)."
)
@click.option(
    "--export-name",
    default=None,
    help="Name of the exported .safetensors (default <model>_finetuned).",
)
@click.option("--cache-gb", default=4.0, show_default=True, help="RAM for decoded scenes.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finetune(**options) -> None:
    """Train or fine-tune a reconstruction model on spectral data (see --data)."""
    from geohsr.training.config import TrainConfig
    from geohsr.training.trainer import train

    session = {
        "out_dir": options["out_dir"],
        "resume": options["resume"],
        "time_limit_min": options["time_limit_min"],
        "stop_after": options["stop_after"],
        "workers": options["workers"],
        "device": options["device"],
        "progress": not options["quiet"],
        "checkpoint_every": options["checkpoint_every"],
        "cache_gb": options["cache_gb"],
    }
    click.get_current_context().meta[OUTPUT_META] = options["out_dir"]  # advice after a stop
    saved = Path(options["out_dir"]) / "config.json"
    if options["resume"] and saved.is_file():
        config = _resumed_config(
            TrainConfig.from_dict(json.loads(saved.read_text())), options, session
        )
    else:
        config = _config_from_options(options, session)
    if config.int8_adapt:
        from geohsr.training.int8_adapt import ADAPT_LR, adapt_for_int8

        source = click.get_current_context().get_parameter_source("lr")
        if not options["resume"] and source == click.core.ParameterSource.DEFAULT:
            config.lr = ADAPT_LR  # a fine-tune of a fine model, not training
        path, step = adapt_for_int8(config)
        finished = step >= (config.steps or 0)
        done = "finished" if finished else "stopped early (continue with --resume)"
        click.echo(f"{done} at step {step}/{config.steps}; INT8-adapted weights: {path}")
        click.echo(
            f"use it: put {path.parent.name}/{path.name} in an int8 folder beside the --init "
            "weights file (shipped weights: pretrained/int8/), e.g. after `geohsr convert` "
            "to float16; --precision int8 then runs it (geohsr info on a cube names it)"
        )
        return
    result = train(config)
    state = "stopped early (continue with --resume)" if result.stopped_early else "finished"
    click.echo(f"{state} at step {result.step}/{result.total_steps}; run folder {result.out_dir}")
    if result.best:
        best = result.best
        click.echo(
            f"best validation (step {best['step']}): MRAE {best['mrae']:.4f}  "
            f"RMSE {best['rmse']:.4f}  PSNR {best['psnr']:.2f} dB  SAM {best['sam']:.2f} deg"
        )
    if result.weights:
        click.echo(f"weights: {result.weights}")


@click.command()
@click.option("--weights", required=True, help="Weights file or shipped weights name.")
@click.option("--data", "data", multiple=True, required=True, help=DATA_HELP)
@click.option(
    "--camera",
    "cameras",
    multiple=True,
    help=CAMERA_HELP
    + " Renders spectral scenes; data with its own RGB (tiles, NTIRE RGB) is scored as given,"
    " and with --known-camera this one camera is what took it. Default: the cameras "
    "recorded in the weights, else cie1964.",
)
@click.option("--degrade", is_flag=True, help="Apply real-world degradation to simulated RGB.")
@click.option(
    "--known-camera",
    is_flag=True,
    help="Tell camera-aware models the rendering camera (as `reconstruct --camera`); for "
    "data with its own RGB, the single --camera given.",
)
@click.option(
    "--every-camera",
    is_flag=True,
    help="Render each spectral scene with every --camera (default: cameras in turn).",
)
@click.option(
    "--jpeg-quality", default="80,80", show_default=True, help="JPEG quality range with --degrade."
)
@click.option(
    "--scenes",
    default=None,
    help="Comma-separated scene names, or 'val' for the weights' validation scenes.",
)
@click.option("--out", "out_path", default=None, help="Write the report (.csv or .json).")
@click.option("--device", default="auto", show_default=True)
@click.option("--tile", default=512, show_default=True, help="Tile side for large images.")
@click.option("--seed", default=0, show_default=True, help="Seed of the degradation noise.")
def evaluate(
    weights,
    data,
    cameras,
    degrade,
    known_camera,
    every_camera,
    jpeg_quality,
    scenes,
    out_path,
    device,
    tile,
    seed,
):
    """Print MRAE, MRAE over targets >= 0.01, RMSE, PSNR and SAM of WEIGHTS on --data (per
    image and mean). Simulated RGB is rendered at a fixed gain (a white reflector reads 1)."""
    from geohsr.models.weights import load_weights
    from geohsr.spectral.cameras import CameraResponse
    from geohsr.training.degradations import RealWorldDegradation
    from geohsr.training.evaluate import evaluate_data, write_report
    from geohsr.training.trainer import select_device

    torch_device = select_device(device)
    model, meta = load_weights(weights, device=torch_device)
    recorded = [
        CameraResponse.from_metadata(c) for c in (meta.get("camera") or {}).get("cameras", [])
    ]
    names = _csv_list(scenes)
    if names == ["val"]:
        names = [n.removesuffix("[val]") for n in meta.get("val_scenes", [])]
    quality = tuple(_csv_list(jpeg_quality, int))
    report = evaluate_data(
        model,
        list(data),
        cameras=list(cameras) or recorded or ["cie1964"],
        degradation=RealWorldDegradation(jpeg_quality=quality) if degrade else None,
        scene_names=names,
        device=torch_device,
        tile=tile,
        seed=seed,
        every_camera=every_camera,
        camera_known=known_camera,
    )
    width = max([len(r["name"]) for r in report["images"]] + [4])
    click.echo(
        f"{'image':<{width}}  {'MRAE':>8}  {'MRAE>.01':>8}  {'RMSE':>8}  {'PSNR':>7}  {'SAM':>6}"
    )
    for row in [*report["images"], {"name": "mean", **report["mean"]}]:
        click.echo(
            f"{row['name']:<{width}}  {row['mrae']:8.4f}  {row['mrae_bright']:8.4f}  "
            f"{row['rmse']:8.4f}  {row['psnr']:7.2f}  {row['sam']:6.2f}"
        )
    if out_path:
        click.echo(f"report: {write_report(report, out_path)}")
