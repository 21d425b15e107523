"""Reconstruct the example scene and compare with its ground truth.

    python examples/reconstruct_example.py [--weights mxr_unet18_rpr_cave] [--out out_example]

Writes ``<out>/example_cube.zarr`` (the same as ``geohsr reconstruct
examples/data/example_rgb.tif <out>/example_cube.zarr``), prints MRAE / RMSE / PSNR / SAM
against the true spectra overall and per land-cover class, and writes two pictures:
``example_preview.png`` (``geohsr preview``) and ``example_spectra_vs_truth.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from geohsr.inference.scene import DEFAULT_WEIGHTS, ReconstructOptions, reconstruct_scene
from geohsr.preview import make_preview
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.training.metrics import spectral_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_example_scene import RGB_TIF, build_scene, load_spectra, write_example  # noqa: E402

SHOWN_CLASSES = ("vegetation", "soil", "roof", "sand")


def class_pixels(labels: np.ndarray, valid: np.ndarray, rows: list[dict[str, str]]):
    """One ``(x, y)`` pixel per shown class, inside a patch of that class (its 9 x 9
    neighbourhood is the same class) and nearest the median position of the class."""
    pixels = []
    for name in SHOWN_CLASSES:
        members = [i for i, row in enumerate(rows) if row["class"] == name]
        mask = np.isin(labels, members) & valid
        interior = mask.copy()
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                interior &= np.roll(mask, (dy, dx), axis=(0, 1))
        ys, xs = np.nonzero(interior)
        centre = np.array([np.median(ys), np.median(xs)])
        k = int(np.argmin((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2))
        pixels.append((int(xs[k]), int(ys[k])))
    return pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--out", type=Path, default=Path("out_example"))
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    args = parser.parse_args()
    if not RGB_TIF.exists():
        write_example()
    args.out.mkdir(parents=True, exist_ok=True)
    cube_path = args.out / "example_cube.zarr"
    result = reconstruct_scene(
        RGB_TIF,
        cube_path,
        weights=args.weights,
        overwrite=True,
        options=ReconstructOptions(tile=args.tile, overlap=args.overlap),
    )
    print(f"reconstructed {result.output} in {result.seconds:.1f} s")

    truth, labels, valid = build_scene()
    pred = xr.open_zarr(cube_path)["reflectance"].values
    assert np.array_equal(np.isfinite(pred).all(axis=0), valid), "nodata must match"
    rows, table = load_spectra()
    print(f"{'pixels':<16}{'MRAE':>8}{'RMSE':>8}{'PSNR':>8}{'SAM':>8}")
    groups = {"all valid": valid}
    for name in dict.fromkeys(row["class"] for row in rows):
        members = [i for i, row in enumerate(rows) if row["class"] == name]
        groups[name] = np.isin(labels, members) & valid
    for name, mask in groups.items():
        m = spectral_metrics(pred[:, mask][:, :, None], truth[:, mask][:, :, None])
        print(f"{name:<16}{m['mrae']:8.4f}{m['rmse']:8.4f}{m['psnr']:8.2f}{m['sam']:8.2f}")

    pixels = class_pixels(labels, valid, rows)
    preview = args.out / "example_preview.png"
    make_preview(cube_path, preview, rgb_path=RGB_TIF, pixels=pixels)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for number, (name, (x, y)) in enumerate(zip(SHOWN_CLASSES, pixels, strict=True), start=1):
        colour = f"C{number - 1}"
        ax.plot(WAVELENGTHS_NM, truth[:, y, x], "--", color=colour, label=f"{number} {name} truth")
        ax.plot(WAVELENGTHS_NM, pred[:, y, x], color=colour, label=f"{number} reconstructed")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("reflectance")
    ax.legend(fontsize="small", ncols=2)
    ax.grid(alpha=0.3)
    comparison = args.out / "example_spectra_vs_truth.png"
    figure.savefig(comparison)
    print(f"wrote {preview} and {comparison}")


if __name__ == "__main__":
    main()
