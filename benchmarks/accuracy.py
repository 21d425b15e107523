"""Accuracy of the shipped network (and any --weights) against root-polynomial regression at a
fixed camera gain, on held-out CAVE scenes and real airborne cubes (see
geohsr.training.accuracy for the protocol). Prints the metrics table and the MRAE reduction of
every network over the best RPR per condition, writes JSON::

    OMP_NUM_THREADS=2 python benchmarks/accuracy.py --out accuracy.json
    python benchmarks/accuracy.py --weights runs/x/mxr_unet18_rpr_cave.safetensors --no-shipped
    python benchmarks/accuracy.py --precisions fp32,bf16,fp16   # accuracy cost of precisions
    python benchmarks/accuracy.py --backends openvino:bf16,torch:bf16   # as this CPU runs them

``--precisions`` scores each network with bf16 / fp16 arithmetic emulated (convolution and
linear weights, inputs and outputs rounded, float32 accumulation: :class:`RoundedPrecision`)
and prints the relative MRAE change against fp32 per condition. ``--backends`` runs the
network through the real backends at their precisions on this machine (what ``reconstruct``
computes): the figures behind ``--precision auto``
(``geohsr.inference.backends.MEASURED_MRAE_COST``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from torch import nn

from geohsr.exceptions import GeoHSRError
from geohsr.models.inference_prep import prepare_for_inference
from geohsr.models.weights import file_sha256, list_shipped_weights, load_weights, read_metadata
from geohsr.shared_data import shared_data_dir
from geohsr.training.accuracy import (
    HELD_OUT_CAMERAS,
    INPUT_STEP,
    TARGET_REDUCTION,
    airborne_test_images,
    cave_test_images,
    format_improvement_table,
    format_metrics_table,
    mrae_reductions,
    reference_cameras,
    reference_data_specs,
    reference_fit_sets,
    reference_training_scenes,
    run_accuracy,
    standard_conditions,
)
from geohsr.training.datasets import load_data_specs

VAL_SCENES = (
    "flowers_ms",
    "jelly_beans_ms",
    "real_and_fake_peppers_ms",
    "stuffed_toys_ms",
    "fake_and_real_sushi_ms",
)
BASELINES = ("linear", "rpr2", "rpr3")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"cave:{shared_data_dir() / 'cave'}")
    parser.add_argument("--airborne", default=str(shared_data_dir() / "airborne"))
    parser.add_argument("--scenes", default=",".join(VAL_SCENES), help="held-out CAVE scenes")
    parser.add_argument("--weights", action="append", default=[], help="extra weights file")
    parser.add_argument("--no-shipped", action="store_true", help="skip pretrained/ networks")
    parser.add_argument(
        "--cameras", default=",".join(HELD_OUT_CAMERAS), help="held-out cameras ('' for none)"
    )
    parser.add_argument("--jpeg-quality", type=int, default=80)
    parser.add_argument(
        "--exact-projection",
        action="store_true",
        help="project onto the exact 8-bit RGB (as for float input), not its quantisation cell",
    )
    parser.add_argument(
        "--reference-data",
        action="append",
        default=None,
        help="data spec the RPR references are fitted on (repeatable); default: --data plus "
        "the synthetic-aerial scenes the first network was trained on (its training data)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="write the full report (JSON) here")
    parser.add_argument(
        "--precisions", default="fp32", help="comma-separated: fp32, bf16, fp16 (emulated)"
    )
    parser.add_argument(
        "--backends",
        default="",
        help="comma-separated BACKEND:PRECISION run for real here, e.g. openvino:bf16,torch:bf16",
    )
    return parser.parse_args()


class BackendRun(nn.Module):
    """``model`` (prepared for inference) run by a real inference backend at a precision,
    exactly as ``geohsr reconstruct --backend B --precision P`` runs it on this machine:
    the accuracy cost of what the CPU really computes (OpenVINO may run in reduced
    precision operations that :class:`RoundedPrecision` keeps in float32). Telling it a
    camera rebuilds the backend (OpenVINO converts once per camera, then reads its cache)."""

    def __init__(self, model: nn.Module, backend: str, precision: str) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)
        self.backend_name, self.precision = backend, precision
        self._backend = None
        if hasattr(self.model, "set_camera"):
            self.set_camera = self._set_camera
            self.set_input_step = self.model.set_input_step

    def _set_camera(self, css) -> None:
        self.model.set_camera(css)
        self._backend = None

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        from geohsr.inference.backends import make_backend

        if self._backend is None:
            self._backend = make_backend(
                self.model, device_type="cpu", backend=self.backend_name, precision=self.precision
            )
        return torch.from_numpy(self._backend.forward(rgb.cpu().numpy()))


ROUNDED = {"bf16": torch.bfloat16, "fp16": torch.float16}


class RoundedPrecision(nn.Module):
    """``model`` with reduced-precision arithmetic emulated at float32 speed: every
    convolution's and linear layer's weights, inputs and outputs rounded to ``dtype``,
    products accumulated in float32, as oneDNN (bf16) and cuDNN (fp16) run them; the
    camera-aware model's base and metamer projection stay float32, as in inference.
    (torch's CPU bf16/fp16 autocast computes the same roundings but is ~10x slower than
    float32 on CPUs without those instructions.)"""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)
        if hasattr(self.model, "set_camera"):
            self.set_camera = self.model.set_camera
            self.set_input_step = self.model.set_input_step

        def rounded(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(dtype).float()

        with torch.no_grad():
            for module in self.model.modules():
                if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Linear):
                    module.weight.copy_(rounded(module.weight))
                    if module.bias is not None:
                        module.bias.copy_(rounded(module.bias))
                    module.register_forward_pre_hook(lambda _, args: (rounded(args[0]),))
                    module.register_forward_hook(lambda _m, _a, out: rounded(out))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.model(rgb)


def precision_costs(report: dict, labels: list[str], precisions: list[str]) -> str:
    """Table of the relative MRAE change of each reduced precision (``bf16``, emulated) or
    backend run (``openvino-bf16``) against the torch fp32 network."""
    lines = ["relative MRAE change against fp32 (accuracy cost of the precision)"]
    for label in labels:
        fp32 = report["results"][label]
        for precision in precisions:
            other = report["results"][f"{label}@{precision}"]
            changes = {
                key: other[key]["mean"]["mrae"] / fp32[key]["mean"]["mrae"] - 1 for key in fp32
            }
            mean = sum(changes.values()) / len(changes)
            worst = max(changes.values(), key=abs)
            lines.append(f"  {label} {precision}: mean {mean:+.3%}, largest {worst:+.3%}")
            for key, change in changes.items():
                lines.append(f"    {key:<28} {change:+.3%}")
    return "\n".join(lines)


def shipped_networks() -> list[str]:
    return [n for n in list_shipped_weights() if read_metadata(n)["model"] not in BASELINES]


def main() -> None:
    args = parse_args()
    specs = ([] if args.no_shipped else shipped_networks()) + args.weights
    if not specs:
        sys.exit("no network to score: pass --weights or keep the shipped ones")
    models, infos, metas = {}, {}, []
    for spec in specs:
        model, meta = load_weights(spec, device=args.device)
        metas.append(meta)
        label = Path(model.geohsr_weights).stem
        models[label] = prepare_for_inference(model)
        infos[label] = {
            "model": meta["model"],
            "weights": Path(model.geohsr_weights).name,
            "sha256": file_sha256(model.geohsr_weights),
            "train_scenes": meta.get("train_scenes", []),
            "training_data": meta.get("training_data", []),
            "cameras": [c["name"] for c in (meta.get("camera") or {}).get("cameras", [])],
        }
    precisions = [p for p in args.precisions.split(",") if p]
    if any(p not in ("fp32", *ROUNDED) for p in precisions):
        sys.exit(f"--precisions: fp32, bf16 or fp16, got {args.precisions!r}")
    runs = [tuple(b.split(":")) for b in args.backends.split(",") if b]
    if any(len(run) != 2 for run in runs):
        sys.exit(f"--backends: BACKEND:PRECISION, comma-separated; got {args.backends!r}")
    networks = list(models)
    for label in networks:
        for precision in precisions:
            if precision != "fp32":
                wrapped = RoundedPrecision(models[label], ROUNDED[precision])
                models[f"{label}@{precision}"] = wrapped
        for backend, precision in runs:
            models[f"{label}@{backend}-{precision}"] = BackendRun(models[label], backend, precision)
    variants = [p for p in precisions if p != "fp32"] + [f"{b}-{p}" for b, p in runs]
    wanted = args.scenes.split(",")
    held_out = [c for c in args.cameras.split(",") if c]
    scenes = load_data_specs([args.data])
    test_scenes = [s for s in scenes if s.name in wanted]
    first = next(iter(infos.values()))
    # the references are fitted on the first network's training data (its synthetic aerial
    # scenes too: they are seeded), minus its validation scenes
    reference_specs = args.reference_data or reference_data_specs(args.data, first["training_data"])
    try:
        reference_scenes = load_data_specs(reference_specs)
    except GeoHSRError as err:
        sys.exit(f"--reference-data {reference_specs}: {err}")
    train_scenes = reference_training_scenes(reference_scenes, first["train_scenes"], wanted)
    if not train_scenes:
        sys.exit(f"no training scene to fit the references on in {reference_specs}")
    fit_sets = reference_fit_sets(train_scenes, [s.name for s in scenes])
    for label, info in infos.items():
        if leaked := sorted({s.name for s in test_scenes} & set(info["train_scenes"])):
            print(f"WARNING: {label} was trained on test scenes {leaked}", file=sys.stderr)
    train_cameras = reference_cameras(metas[0], held_out)  # the first network's, as above
    test_sets = {"cave": cave_test_images(test_scenes)}
    if Path(args.airborne).is_dir():
        test_sets["airborne"] = airborne_test_images(args.airborne)
    report = run_accuracy(
        models,
        test_sets,
        standard_conditions(held_out, args.jpeg_quality),
        train_spectra=fit_sets,
        train_cameras=train_cameras,
        seed=args.seed,
        device=args.device,
        input_step=0.0 if args.exact_projection else INPUT_STEP,
        on_result=lambda label, cond, r: print(
            f"  {cond.label:<48} {label:<28} MRAE {r['mean']['mrae']:.4f} "
            f"SAM {r['mean']['sam']:.2f} ({r['seconds']:.1f} s)",
            file=sys.stderr,
        ),
    )
    report["models"] = infos
    report["train_scenes"] = [s.name for s in train_scenes]
    report["reference_data"] = {"": reference_specs}
    if "cave" in fit_sets:
        report["reference_data"]["cave"] = [args.data]
    report["reductions"] = mrae_reductions(report, list(models))
    print(format_metrics_table(report))
    print()
    print(format_improvement_table(report["reductions"], TARGET_REDUCTION))
    if variants:
        print()
        print(precision_costs(report, networks, variants))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"\nreport: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
