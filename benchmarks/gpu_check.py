"""GPU figures for one call of a GPU machine (under 8 minutes on an H100/H200): CUDA tests,
bare-forward speed of every CUDA precision (batch 8 x 512², channels-last), and an
end-to-end GeoTIFF -> Zarr reconstruction of a generated 8192 x 8192 scene with the
shipped weights. Writes ``gpu_check.json`` into ``--out`` (``$OUT`` on the device machine).

Run through ``benchmarks/gpu_check.sh`` (installs the carried wheels first). Expected JSON::

    {"device": "NVIDIA H200", "torch": "2.11.0+cu130",
     "tests": {"exit_code": 0, "summary": "5 passed ..."},
     "model_speed": {"rows": [{"backend": "torch", "precision": "fp16",
                               "megapixels_per_s": ..., "mean_relative_difference": ...}, ...]},
     "scene": {"size": 8192, "seconds": ..., "megapixels_per_s": ..., "windows": ...,
               "inference": "torch fp16", "peak_gpu_memory_gib": ...,
               "busy_seconds": {"model": ..., "blend": ..., "write": ...}},
     "goal_megapixels_per_s": 40}

``busy_seconds``: time spent in each stage of the scene pass, each in its own thread (the
model one block ahead, the blend, the Zarr writes); the stage whose time is nearest
``seconds`` limits the pass.

The paper's mxresnet18 U-Net ran 0.037 s per 482 x 512 image on a V100 (6.7 MP/s); the goal
on an H100/H200 is >= 40 MP/s end to end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_MPS = 40


def run_tests(out: Path) -> dict:
    """The CUDA tests and the backend tests; their exit code and last line."""
    log = out / "pytest.log"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "tests/test_cuda.py", "tests/test_backends.py"]  # fmt: skip
    with log.open("w") as stream:
        code = subprocess.call(command, cwd=HERE.parent, stdout=stream, stderr=subprocess.STDOUT)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return {"exit_code": code, "summary": lines[-1] if lines else ""}


def model_speed(out: Path, batch: int, device: str) -> dict:
    path = out / "model_speed.json"
    subprocess.check_call(
        [sys.executable, str(HERE / "model_speed.py"), "--device", device,
         "--batch", str(batch), "--repeats", "10", "--json", str(path)],
    )  # fmt: skip
    return json.loads(path.read_text())


def busy_timer(owner: type, name: str, totals: dict, key: str) -> None:
    """Wrap method ``name`` of class ``owner`` to add its wall time to ``totals[key]``."""
    method = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - started

    setattr(owner, name, timed)


def scene(size: int, batch: int, workdir: Path, device: str) -> dict:
    import torch
    from scene_common import write_synthetic_scene

    from geohsr.inference.blocks import BlockReconstructor
    from geohsr.inference.options import ReconstructOptions
    from geohsr.inference.scene import reconstruct_scene
    from geohsr.io.zarr_writer import ZarrCubeWriter

    busy: dict[str, float] = {}
    busy_timer(BlockReconstructor, "predict_block", busy, "model")
    busy_timer(BlockReconstructor, "blend", busy, "blend")
    busy_timer(ZarrCubeWriter, "write", busy, "write")

    started = time.perf_counter()
    source = write_synthetic_scene(workdir / f"scene_{size}.tif", size, size)
    generated = time.perf_counter() - started
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    options = ReconstructOptions(device=device, batch_size=batch, sidecars=False)
    result = reconstruct_scene(
        source, workdir / "cube.zarr", options=options, overwrite=True, progress=False
    )
    import xarray as xr

    cube = xr.open_zarr(result.output)
    return {
        "size": size,
        "seconds_to_generate_input": round(generated, 1),
        "seconds": result.seconds,
        "megapixels_per_s": result.megapixels_per_s,
        "windows": result.n_windows,
        "inference": cube.attrs.get("inference"),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "busy_seconds": {key: round(value, 1) for key, value in busy.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"))
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geohsr-gpu"))
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script here")
    args = parser.parse_args()

    import torch

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device")
    args.out.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name() if cuda else "CPU"
    report: dict = {"device": name, "torch": torch.__version__}
    report["goal_megapixels_per_s"] = GOAL_MPS
    path = args.out / "gpu_check.json"
    steps = (
        ("tests", lambda: {"skipped": True} if args.skip_tests else run_tests(args.out)),
        ("model_speed", lambda: model_speed(args.out, args.batch, args.device)),
        ("scene", lambda: scene(args.size, args.batch, args.workdir, args.device)),
    )
    for name, step in steps:
        started = time.perf_counter()
        try:
            report[name] = step()
        except Exception as error:  # record and go on: one call, every figure it can get
            report[name] = {"error": f"{type(error).__name__}: {error}"}
        report[name]["step_seconds"] = round(time.perf_counter() - started, 1)
        path.write_text(json.dumps(report, indent=2))  # after each step: partial runs count
        print(f"{name}: {json.dumps(report[name])[:400]}", flush=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
