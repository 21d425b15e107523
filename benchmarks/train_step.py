"""Seconds per training step and images/s of a model on the current device.

Times full optimiser steps (forward, loss, backward, AdamW + one-cycle) on random crops, with
the perceptual loss and with plain MRAE. Data loading is excluded (measured separately: one
batch of simulated CAVE crops, when the shared data is present).

    python benchmarks/train_step.py                      # mxr_unet18, crop 128, batch 8
    python benchmarks/train_step.py --model mxr_unet18 --crop 128 --batch-size 8 --steps 5
"""

from __future__ import annotations

import argparse
import time

import torch

from geohsr.shared_data import shared_data_dir
from geohsr.training.config import TrainConfig
from geohsr.training.losses import build_loss
from geohsr.training.trainer import param_groups, select_device


def time_steps(model, loss_fn, batch, device, steps: int, warmup: int) -> float:
    """Mean seconds of one optimiser step over ``steps`` timed steps after ``warmup``."""
    config = TrainConfig(data=[], out_dir="")
    optimizer = torch.optim.AdamW(param_groups(model, config), betas=(0.9, 0.99), weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[g["max_lr"] for g in optimizer.param_groups],
        total_steps=steps + warmup,
        pct_start=0.3,
        div_factor=100.0,
    )
    rgb, cube = (t.to(device) for t in batch)
    amp = device.type == "cuda"
    durations = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tick = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(rgb), cube)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            durations.append(time.perf_counter() - tick)
    return sum(durations) / len(durations)


def time_data(crop: int, batch_size: int) -> float | None:
    """Seconds to build one batch of simulated CAVE crops (scenes cached), or None."""
    cave = shared_data_dir() / "cave"
    if not cave.is_dir():
        return None
    from geohsr.spectral.cameras import resolve_cameras
    from geohsr.training.camera import CameraSampler, CameraSampling
    from geohsr.training.datasets import TrainingCrops, load_data_specs
    from geohsr.training.degradations import RealWorldDegradation

    camera = CameraSampler(
        resolve_cameras(["cie1964", "jiang28"]), CameraSampling(mix_prob=0.3, shift_nm=5)
    )
    dataset = TrainingCrops(
        load_data_specs([f"cave:{cave}"]),
        crop=crop,
        camera=camera,
        seed=0,
        degradation=RealWorldDegradation(),
        degrade_prob=0.3,
    )
    for i in range(4 * batch_size):  # decode every scene once
        dataset[i]
    tick = time.perf_counter()
    for i in range(batch_size):
        dataset[1000 + i]
    return time.perf_counter() - tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mxr_unet18")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--losses", default="perceptual,mrae")
    args = parser.parse_args()

    from geohsr.models import create_model

    device = select_device(args.device)
    print(
        f"device {device} ({torch.get_num_threads()} CPU threads), model {args.model} "
        f"width {args.width}, crop {args.crop}, batch {args.batch_size}"
    )
    generator = torch.Generator().manual_seed(0)
    batch = (
        torch.rand(args.batch_size, 3, args.crop, args.crop, generator=generator),
        torch.rand(args.batch_size, 31, args.crop, args.crop, generator=generator),
    )
    for loss_name in args.losses.split(","):
        torch.manual_seed(0)
        model = create_model(args.model, width=args.width).to(device).train()
        loss_fn = build_loss(loss_name).to(device)
        seconds = time_steps(model, loss_fn, batch, device, args.steps, args.warmup)
        print(
            f"loss {loss_name:<10} {seconds:7.3f} s/step  {args.batch_size / seconds:7.2f} images/s"
        )
    data_seconds = time_data(args.crop, args.batch_size)
    if data_seconds is not None:
        print(f"data: one batch of simulated CAVE crops (30 % degraded) in {data_seconds:.3f} s")


if __name__ == "__main__":
    main()
