"""Forward-pass speed of the registry models at 512x512 (or --size) on the current device.

For each model, three variants: as built (weight/spectral norm recomputed every call),
``folded`` (prepare_for_inference: parametrizations folded into plain weights) and
``folded+cl`` (also channels_last). On CUDA every variant runs under fp16 autocast.
Prints the median forward time over --repeats runs after one warm-up, and megapixels/s.

    python benchmarks/model_speed.py --models mxr_unet18 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch

from geohsr.models import create_model, list_models
from geohsr.models.inference_prep import prepare_for_inference


def time_forward(
    model: torch.nn.Module, x: torch.Tensor, repeats: int, device: torch.device
) -> list[float]:
    """Seconds per forward pass, ``repeats`` times, after one untimed warm-up pass."""
    autocast = (
        torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
    )
    times = []
    with torch.inference_mode(), autocast:
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i > 0:
                times.append(time.perf_counter() - start)
    return times


def variants() -> dict[str, Callable[[torch.nn.Module], tuple[torch.nn.Module, bool]]]:
    """Variant name -> function turning a built model into (model to time, channels_last)."""
    return {
        "built": lambda m: (m.eval(), False),
        "folded": lambda m: (prepare_for_inference(m), False),
        "folded+cl": lambda m: (prepare_for_inference(m, channels_last=True), True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list_models(), choices=list_models())
    parser.add_argument("--size", type=int, default=512, help="image height = width, pixels")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass")
    parser.add_argument("--width", type=float, default=1.0, help="model width multiplier")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    precision = "fp16 autocast" if device.type == "cuda" else "float32"
    print(
        f"device: {name} ({precision}), threads: {torch.get_num_threads()}, "
        f"input: {args.batch}x3x{args.size}x{args.size}, repeats: {args.repeats} after 1 warm-up"
    )
    print(f"{'model':<14} {'variant':<10} {'median s':>9} {'min s':>8} {'MP/s':>7}")
    megapixels = args.batch * args.size**2 / 1e6
    for model_name in args.models:
        for variant, prepare in variants().items():
            torch.manual_seed(0)
            model, channels_last = prepare(create_model(model_name, width=args.width).to(device))
            x = torch.rand(args.batch, 3, args.size, args.size, device=device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            times = time_forward(model, x, args.repeats, device)
            median = statistics.median(times)
            print(
                f"{model_name:<14} {variant:<10} {median:>9.3f} {min(times):>8.3f} "
                f"{megapixels / median:>7.3f}"
            )
            del model, x


if __name__ == "__main__":
    main()
