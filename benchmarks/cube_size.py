"""Size and error of output cubes by storage encoding, measured in one run.

Reconstructs the example scene (``examples/data/example_rgb.tif``, 600 x 500 px) with the
default weights once per encoding, writes each as a COG and a Zarr store, and prints the
size relative to lossless float32 and the largest difference from it (reflectance).
Goal (issue 14): the default at most 40 % of lossless float32, error at most 1e-4.

    python benchmarks/cube_size.py [--scene PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENCODINGS = (
    ("float32, every bit (--precision-bits 0)", {"precision_bits": None}),
    ("float32, 2^-13 (default)", {}),
    ("float32, 2^-11", {"precision_bits": 11}),
    ("uint16 x 10000 (--dtype uint16)", {"dtype": "uint16"}),
)


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def read_cube(path: Path) -> np.ndarray:
    from geohsr.preview import open_cube

    return np.asarray(open_cube(path).values, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", type=Path, default=ROOT / "examples/data/example_rgb.tif")
    parser.add_argument("--out", type=Path, default=None, help="keep the cubes here")
    args = parser.parse_args()

    from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions
    from geohsr.inference.predictor import Predictor
    from geohsr.inference.scene import reconstruct_scene

    folder = args.out or Path(tempfile.mkdtemp(prefix="geohsr_size_"))
    folder.mkdir(parents=True, exist_ok=True)
    predictor = Predictor.from_weights(DEFAULT_WEIGHTS, device="cpu")
    rows = []
    reference: dict[str, np.ndarray] = {}
    for label, settings in ENCODINGS:
        options = ReconstructOptions(**settings)
        for suffix in (".tif", ".zarr"):
            out = folder / f"{label.split(',')[0].split()[0]}_{len(rows)}{suffix}"
            reconstruct_scene(
                args.scene,
                out,
                predictor=predictor,
                options=options,
                overwrite=True,
                progress=False,
            )
            values = read_cube(out)
            reference.setdefault(suffix, values)
            error = np.nanmax(np.abs(values - reference[suffix]))
            rows.append((label, suffix, size_mb(out), error))
    print(f"scene: {args.scene.name}; cubes in {folder}")
    print(f"{'encoding':42s} {'format':6s} {'MB':>7s} {'vs lossless':>11s} {'max error':>10s}")
    lossless = {suffix: mb for label, suffix, mb, _ in rows if "every bit" in label}
    for label, suffix, mb, error in rows:
        ratio = mb / lossless[suffix]
        print(f"{label:42s} {suffix:6s} {mb:7.2f} {ratio:10.1%} {error:10.2e}")
    if args.out is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
