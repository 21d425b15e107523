"""Forward-pass speed of a model at 512x512 (or --size) for every inference backend x
precision this device runs, side by side in one run, with each one's mean relative
difference from torch fp32 on the same inputs.

By default the shipped weights (``--weights``); ``--model NAME --width W`` times a random
registry model instead. ``--variants`` prints the older table instead: as built,
``folded`` (weight/spectral norm folded) and ``folded+cl`` (also channels-last), torch only.
Times are the median of ``--repeats`` runs after one warm-up (which also compiles).

    python benchmarks/model_speed.py --batch 2 --repeats 5
    python benchmarks/model_speed.py --device cuda --batch 8 --json speed.json   # GPU check
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from backend_configs import auto_config, backend_configs, config_predictor

from geohsr.models import create_model, list_models
from geohsr.models.inference_prep import prepare_for_inference


def time_calls(call: Callable[[], object], repeats: int, cuda: bool) -> list[float]:
    """Seconds per call, ``repeats`` times, after one untimed warm-up call."""
    times = []
    for i in range(repeats + 1):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if cuda:
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - start)
    return times


def backends_table(args, device: torch.device) -> list[dict]:
    """Every backend x precision: seconds, MP/s, difference from torch fp32."""
    configs, skipped = backend_configs(device.type)
    default = auto_config(device.type)
    x = np.random.default_rng(0).random((args.batch_size, 3, args.size, args.size), np.float32)
    megapixels = args.batch_size * args.size**2 / 1e6
    rows, reference = [], None
    what = f"{args.model} width {args.width:g} (random)" if args.model else args.weights
    print(
        f"{what} on {device_name(device)}, threads {args.threads or torch.get_num_threads()}, "
        f"input {args.batch_size}x3x{args.size}x{args.size}, "
        f"median of {args.repeats} after 1 warm-up"
    )
    print(f"{'backend':<9} {'precision':<9} {'median s':>9} {'MP/s':>8} {'mean rel. diff':>15}")
    for backend, precision in configs:
        predictor = config_predictor(args, device, backend, precision)
        out = predictor.predict(x)
        times = time_calls(lambda p=predictor: p.predict(x), args.repeats, device.type == "cuda")
        if reference is None:
            reference = out
        difference = float(np.abs(out - reference).mean() / np.abs(reference).mean())
        median = statistics.median(times)
        mark = "  <- default" if (backend, precision) == default else ""
        print(
            f"{backend:<9} {precision:<9} {median:>9.3f} {megapixels / median:>8.3f} "
            f"{difference:>15.2e}{mark}"
        )
        rows.append(
            {
                "backend": backend,
                "precision": precision,
                "median_s": median,
                "megapixels_per_s": megapixels / median,
                "mean_relative_difference": difference,
                "default": (backend, precision) == default,
            }
        )
        del predictor
    for reason in skipped:
        print(f"skipped {reason}")
    return rows


def variants_table(args, device: torch.device) -> None:
    """The torch-only table: as built, folded, folded + channels-last."""
    variants = {
        "built": lambda m: (m.eval(), False),
        "folded": lambda m: (prepare_for_inference(m), False),
        "folded+cl": lambda m: (prepare_for_inference(m, channels_last=True), True),
    }
    cuda = device.type == "cuda"
    print(f"{'model':<14} {'variant':<10} {'median s':>9} {'min s':>8} {'MP/s':>7}")
    megapixels = args.batch_size * args.size**2 / 1e6
    name = args.model or "mxr_unet18"
    for variant, prepare in variants.items():
        torch.manual_seed(0)
        model, channels_last = prepare(create_model(name, width=args.width).to(device))
        x = torch.rand(args.batch_size, 3, args.size, args.size, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.float16) if cuda else nullcontext()
        with torch.inference_mode(), autocast:
            times = time_calls(lambda m=model, x=x: m(x), args.repeats, cuda)
        median = statistics.median(times)
        print(
            f"{name:<14} {variant:<10} {median:>9.3f} {min(times):>8.3f} "
            f"{megapixels / median:>7.3f}"
        )


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def main() -> None:
    from geohsr.inference.options import DEFAULT_WEIGHTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="weights name or path")
    parser.add_argument("--model", choices=list_models(), help="random registry model instead")
    parser.add_argument("--width", type=float, default=1.0, help="--model width multiplier")
    parser.add_argument("--size", type=int, default=512, help="image height = width, pixels")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument(
        "--batch", dest="batch_size", type=int, default=2, help="images per forward pass"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--variants", action="store_true", help="the torch-only variant table")
    parser.add_argument("--json", type=Path, help="write the backend table here")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    if args.variants:
        variants_table(args, device)
        return
    rows = backends_table(args, device)
    if args.json:
        record = {
            "device": device_name(device),
            "input": [args.batch_size, 3, args.size, args.size],
            "weights": None if args.model else args.weights,
            "model": args.model,
            "rows": rows,
        }
        args.json.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
