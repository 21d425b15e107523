"""Shared by the speed benchmarks: every inference backend x precision this machine runs.

A configuration is listed when its backend is installed and its precision runs in hardware
here (emulated bf16 on a CPU without bfloat16 instructions is slower than fp32 and never
chosen, so it is reported as skipped with the reason)."""

from __future__ import annotations


def backend_configs(device_type: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``([(backend, precision), ...], [skipped reasons])`` for ``device_type``, torch fp32
    first (the baseline)."""
    from geohsr.inference.backends import hardware_precisions
    from geohsr.inference.backends.capabilities import openvino_installed

    configs, skipped = [], []
    names = ["torch"] + (["openvino"] if device_type == "cpu" else [])
    for backend in names:
        if backend == "openvino" and not openvino_installed():
            skipped.append('openvino: not installed (pip install "geohsr[openvino]")')
            continue
        hardware = hardware_precisions(backend, device_type)
        for precision in ("fp32", "bf16", "fp16", "int8"):
            if precision in hardware:
                configs.append((backend, precision))
            elif precision == "int8":
                if backend == "openvino":
                    skipped.append('openvino int8: needs NNCF (pip install "geohsr[int8]")')
            else:
                skipped.append(f"{backend} {precision}: no {precision} arithmetic in hardware here")
    return configs, skipped


def auto_config(device_type: str) -> tuple[str, str]:
    """What ``--backend auto --precision auto`` resolves to here."""
    from geohsr.inference.backends import resolve_backend, resolve_precision

    backend = resolve_backend("auto", device_type)
    return backend, resolve_precision("auto", backend, device_type)


def config_predictor(args, device: str, backend: str, precision: str):
    """The predictor of ``args.weights`` (or a random ``args.model`` at ``args.width``, seed
    0) on ``device`` with ``args.threads`` threads and ``args.batch_size`` windows per call,
    run by ``backend`` at ``precision``."""
    import torch

    from geohsr.inference.predictor import Predictor
    from geohsr.models import create_model

    settings = dict(
        device=device,
        batch_size=args.batch_size,
        threads=args.threads,
        backend=backend,
        precision=precision,
    )
    if args.model:
        torch.manual_seed(0)
        return Predictor(create_model(args.model, width=args.width), **settings)
    return Predictor.from_weights(args.weights, **settings)
