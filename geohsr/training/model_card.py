"""Model cards for shipped weights, rendered from the weights metadata and an accuracy report.

Nothing is typed by hand: the training data, split, cameras, recipe and training-time
validation come from the metadata that :func:`~geohsr.models.weights.save_weights` stored in
the file; the test metrics come from the JSON of ``benchmarks/accuracy.py`` and are matched to
the weights by SHA-256, so a card can never show numbers of other weights::

    card = render_model_card("pretrained/rpr3_cave.safetensors", json.load(open("acc.json")))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open

from geohsr.exceptions import WeightsError
from geohsr.models.weights import file_sha256, read_metadata, resolve_weights
from geohsr.training.datasets.synthetic_aerial import SYNTHETIC_KINDS, VARIED_KIND

#: Citation of a data kind (the KIND of a ``--data KIND:PATH`` spec), when one is required.
DATA_CITATIONS = {
    "cave": (
        "CAVE Multispectral Image Database (F. Yasuma, T. Mitsunaga, D. Iso, S. K. Nayar, "
        '"Generalized Assorted Pixel Camera: Post-Capture Control of Resolution, Dynamic Range '
        'and Spectrum", IEEE TIP 2010), research use'
    ),
}
#: Recipe entries left out of the recipe table (shown elsewhere or session-only); unset
#: (None) entries are left out too.
_RECIPE_SKIP = {
    "data",
    "val_scenes",
    "cameras",
    "exclude_cameras",
    "export_name",
    "time_limit_min",
    "val_every",
    "checkpoint_every",
    "log_every",
    "stop_after",
}


def _parameter_count(path: Path) -> int:
    with safe_open(str(path), framework="pt") as fh:
        return sum(_numel(fh, key) for key in fh.keys())


def _numel(handle: Any, key: str) -> int:
    count = 1
    for size in handle.get_slice(key).get_shape():
        count *= size
    return count


def _metric_row(label: str, condition: str, mean: Mapping[str, float]) -> str:
    return (
        f"| {condition} | {label} | {mean['mrae']:.4f} | {mean['rmse']:.4f} "
        f"| {mean['psnr']:.2f} | {mean['sam']:.2f} |"
    )


def _data_lines(meta: Mapping[str, Any]) -> list[str]:
    lines = []
    for spec in meta.get("training_data", []):
        kind, _, path = str(spec).partition(":")
        source = DATA_CITATIONS.get(kind, f"`{kind}` data")
        if kind in SYNTHETIC_KINDS:  # generated on the fly: the argument is a count
            varied = ", with spectral variability" if kind == VARIED_KIND else ""
            lines.append(
                f"- {path} synthetic aerial scenes (`{kind}:{path}`), painted with "
                f"measured spectra of the earthlib spectral library (MIT){varied}, seeded."
            )
            continue
        lines.append(f"- {source}; read as `{kind}:` from `{Path(path).name}/`.")
    train, val = meta.get("train_scenes", []), meta.get("val_scenes", [])
    lines.append(f"- Training scenes ({len(train)}): {', '.join(train)}.")
    lines.append(f"- Held-out validation scenes ({len(val)}, never trained on): {', '.join(val)}.")
    return lines


def _exposure_text(sampling: Mapping[str, Any]) -> str:
    low, high = sampling["exposure"]
    if "percentile" in sampling:  # weights trained before the fixed-gain rendering
        return f"exposure level {low:g}-{high:g} at the {sampling['percentile']:g}th percentile."
    return (
        f"fixed-gain exposure k log-uniform in {low:g}-{high:g} (target scaled by k), 8-bit "
        f"quantisation with probability {sampling.get('quantize_prob', 0):g}, camera told to "
        f"the model with probability {sampling.get('known_prob', 0):g}."
    )


def _camera_lines(meta: Mapping[str, Any]) -> list[str]:
    camera = meta.get("camera") or {}
    recipe = meta.get("recipe", {})
    names = [c["name"] for c in camera.get("cameras", [])]
    lines = [
        f"- RGB rendered from the spectra with {len(names)} camera responses: {', '.join(names)}."
    ]
    if excluded := recipe.get("exclude_cameras"):
        lines.append(f"- Cameras held out of training (test only): {', '.join(excluded)}.")
    if sampling := camera.get("sampling"):
        lines.append(
            f"- Per render: a random convex mixture of 2-3 cameras with probability "
            f"{sampling['mix_prob']:g}, spectral shift up to +-{sampling['shift_nm']:g} nm, "
            f"log white-balance error sd {sampling['wb_jitter']:g}, " + _exposure_text(sampling)
        )
        if tilt := sampling.get("spectral_tilt"):
            lines.append(
                f"- Spectra tilted per sample by a random smooth factor (log-scale tilt and "
                f"bow across 400-700 nm, sd {tilt:g}) before rendering; the target is tilted "
                "alike."
            )
    if recipe.get("quantize_cell"):
        lines.append(
            "- Known-camera samples projected onto the spectra rendering within the 8-bit "
            "quantisation cell of their RGB (half a level either way), as reconstruct does "
            "for integer input with these weights."
        )
    if sigma := (meta.get("config") or {}).get("render_sigma"):
        lines.append(
            f"- Integer input with the camera known: projected onto the likeliest RGB of its "
            f"quantisation cell given the network's rendering, whose error on training scenes "
            f"was {sigma[0]:g} + {sigma[1]:g} sqrt(level) levels (benchmarks/render_error.py)."
        )
    gain = (meta.get("config") or {}).get("bright_residual_gain", 1.0)
    if gain != 1.0:
        lines.append(
            f"- The learnt residual of pixels at and above the level input's saturation is "
            f"scaled by {gain:g} (ramping from 1 two stops darker), the gain with the lowest "
            "MRAE on the weights' own training scenes (benchmarks/bright_gate.py)."
        )
    if rule := camera.get("exposure_rule"):
        lines.append(f"- Exposure: {rule}.")
    if degradation := meta.get("degradation"):
        lines.append(
            f"- Real-world degradation with probability {recipe.get('degrade_prob', 0):g}: "
            f"RGGB mosaic, shot/read noise up to {degradation['shot_max']:g}/"
            f"{degradation['read_max']:g}, bilinear demosaic, JPEG quality "
            f"{degradation['jpeg_quality'][0]}-{degradation['jpeg_quality'][1]}."
        )
    return lines


def _recipe_lines(meta: Mapping[str, Any]) -> list[str]:
    recipe = {
        k: v for k, v in meta.get("recipe", {}).items() if k not in _RECIPE_SKIP and v is not None
    }
    lines = ["| Setting | Value |", "|---|---|"]
    lines += [f"| {key} | `{value}` |" for key, value in recipe.items()]
    if meta.get("steps") is not None:
        lines.append(f"| exported at step | `{meta['steps']}` |")
    return lines


def _accuracy_lines(label: str, sha256: str, accuracy: Mapping[str, Any]) -> list[str]:
    labels = [k for k, info in accuracy["models"].items() if info["sha256"] == sha256]
    if not labels:
        raise WeightsError(
            f"the accuracy report has no results for these weights ({label}, sha256 "
            f"{sha256[:12]}); run benchmarks/accuracy.py on them and pass its --out JSON"
        )
    own = labels[0]
    results = accuracy["results"][own]
    sets = "; ".join(f"{k}: {', '.join(v)}" for k, v in accuracy["test_sets"].items())
    lines = [
        f"Whole-image metrics on held-out images ({sets}) at a fixed camera gain, from "
        "`benchmarks/accuracy.py`:",
        "",
        "| Condition | Model | MRAE | RMSE | PSNR (dB) | SAM (deg) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    reductions = {
        row["condition"]: row for row in accuracy.get("reductions", []) if row["model"] == own
    }
    for condition in accuracy["conditions"]:
        if condition["key"] not in results:
            continue
        lines.append(_metric_row(label, condition["label"], results[condition["key"]]["mean"]))
        if row := reductions.get(condition["label"]):
            reference = accuracy["results"][row["reference"]][condition["key"]]["mean"]
            lines.append(_metric_row(row["reference"], condition["label"], reference))
    if reductions:
        lines += ["", "MRAE reduction over the best root-polynomial regression per condition:", ""]
        lines += [f"- {c}: {row['reduction']:.1%}" for c, row in reductions.items()]
        missed = [
            c
            for c, row in reductions.items()
            if row["reduction"] < TARGET_REDUCTION or row["sam"] >= row["reference_sam"]
        ]
        lines += [
            "",
            f"Target (MRAE at least {TARGET_REDUCTION:.0%} below RPR and lower SAM on every "
            "condition): " + (f"**not met** on {', '.join(missed)}." if missed else "met."),
        ]
    lines += [
        "",
        "8-bit RGB at a fixed gain (a white reflector reads 1 at exposure 1). MRAE over target "
        "values >= 0.01; SAM over pixels whose mean is >= 0.01. '(known)' conditions run the "
        "model with `--camera` and compare with RPR fitted for that camera; '(unknown)' ones "
        "run it without and compare with RPR fitted over all training cameras. Real-world: RGGB "
        f"mosaic, noise, bilinear demosaic and JPEG (seed {accuracy['seed']}).",
    ]
    if "references" in accuracy:  # reports since 2026-12-02 say what the references saw
        lines[-1] += (
            " The RPR references (degrees 2 and 3) are fitted on the network's training "
            "pixels; a ':cave' suffix marks those fitted on its CAVE scenes alone. Airborne "
            "pixels without data are not scored."
        )
    return lines + _backend_lines(label, own, accuracy)


def _backend_lines(label: str, own: str, accuracy: Mapping[str, Any]) -> list[str]:
    """The weights ``own`` run through real backends (``accuracy.py --backends``, results
    labelled ``OWN@BACKEND-PRECISION``): their metrics and change against ``own``'s."""
    runs = [run for run in accuracy["results"] if run.startswith(f"{own}@")]
    if not runs:
        return []
    lines = [
        "",
        "Run through the inference backends (`benchmarks/accuracy.py --backends`, what "
        "`--backend` / `--precision` compute; int8 runs the INT8-adapted copy in `int8/` "
        "when there is one):",
        "",
        "| Condition | Run | MRAE | change | SAM (deg) |",
        "|---|---|---:|---:|---:|",
    ]
    for run in runs:
        for condition in accuracy["conditions"]:
            key = condition["key"]
            if key not in accuracy["results"][run] or key not in accuracy["results"][own]:
                continue
            mean = accuracy["results"][run][key]["mean"]
            base = accuracy["results"][own][key]["mean"]["mrae"]
            lines.append(
                f"| {condition['label']} | {label}@{run.split('@', 1)[1]} | {mean['mrae']:.4f} "
                f"| {mean['mrae'] / base - 1:+.2%} | {mean['sam']:.2f} |"
            )
    return lines


#: The accuracy target of the shipped network over root-polynomial regression.
TARGET_REDUCTION = 0.25

KNOWN_LIMITS = (
    "Check the training data above: weights trained on CAVE alone saw laboratory scenes "
    "(objects, paints, faces, food) under one illuminant per scene, 400-700 nm only.",
    "Outputs are in the input's radiometric scale: reflectance for reflectance-calibrated "
    "linear RGB; for camera images, reflectance x exposure. Tone curves, white balance and "
    "atmosphere of a product change the level and shape.",
    "For your own sensor or land cover, fine-tune on RGB + hyperspectral tile pairs "
    "(`geohsr finetune --data tiles:RGB.tif,HS.tif --init <these weights>`) and evaluate "
    "with `geohsr evaluate` before trusting spectra.",
    "MRAE leaves out target values below 0.01 (dark CAVE backgrounds would dominate it); "
    "compare models on SAM and RMSE too.",
)


def render_model_card(weights: str | Path, accuracy: Mapping[str, Any]) -> str:
    """Markdown model card of ``weights`` (shipped name or path) with the test metrics of
    ``accuracy`` (the JSON of ``benchmarks/accuracy.py``; must contain these weights)."""
    path = resolve_weights(weights)
    meta = read_metadata(path)
    sha256 = file_sha256(path)
    label = path.stem
    config = meta.get("config") or {}
    validation = (meta.get("metrics") or {}).get("validation") or {}
    lines = [
        f"# {label}",
        "",
        f"Weights of the geohsr model `{meta['model']}`"
        + (f" (config `{config}`)" if config else "")
        + f": linear RGB in [0, 1] -> spectra at {len(meta['wavelengths_nm'])} wavelengths, "
        f"{meta['wavelengths_nm'][0]}-{meta['wavelengths_nm'][-1]} nm, in the input's "
        "radiometric scale (reflectance for reflectance-calibrated RGB).",
        "",
        f"- File: `{path.name}`, {path.stat().st_size / 1e6:.2f} MB, {meta['dtype']}, "
        f"{_parameter_count(path):,} stored values.",
        f"- SHA-256: `{sha256}`.",
        f"- Written by geohsr {meta['software_version']}.",
        f"- Input: {meta.get('input', 'RGB in [0, 1]')}.",
        "",
        "```bash",
        f"geohsr reconstruct photo.tif cube.zarr --weights {label}",
        "```",
        "",
        "## Training data",
        "",
        *_data_lines(meta),
        "",
        "## Camera responses",
        "",
        *_camera_lines(meta),
        "",
        "## Recipe",
        "",
        *_recipe_lines(meta),
        "",
        "## Test metrics",
        "",
        *_accuracy_lines(label, sha256, accuracy),
    ]
    if validation:
        lines += [
            "",
            f"Validation recorded in the weights (the trainer's protocol: validation scene i "
            f"rendered with training camera i): MRAE {validation['mrae']:.4f}, "
            f"RMSE {validation['rmse']:.4f}, PSNR {validation['psnr']:.2f} dB, "
            f"SAM {validation['sam']:.2f} deg.",
        ]
    lines += ["", "## Known limits", "", *(f"- {limit}" for limit in KNOWN_LIMITS)]
    return "\n".join(lines) + "\n"
