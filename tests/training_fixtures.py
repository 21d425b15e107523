"""Tiny on-disk fixtures in the exact layouts the training data loaders read.

NTIRE 2020 / ARAD_1K ``.mat`` files are MATLAB v7.3 (HDF5): MATLAB writes arrays column-major,
so a cube that is (H, W, 31) in MATLAB appears to h5py as (31, W, H). The writers below store
exactly that, so loaders must transpose back.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from geohsr.spectral import WAVELENGTHS_NM
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.render import render_rgb


def smooth_cube(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(31, H, W) float32 reflectance in (0.05, 0.95): smooth spectra with spatial structure.

    Asymmetric in y and x (left-right and top-bottom differ) so axis mix-ups show.
    """
    rng = np.random.default_rng(seed)
    wl = (WAVELENGTHS_NM - 400) / 300.0  # (31,) in [0, 1]
    endmembers = np.stack(
        [
            0.2 + 0.6 * wl,  # red-ish, rising
            0.8 - 0.6 * wl,  # blue-ish, falling
            0.3 + 0.4 * np.exp(-((wl - 0.5) ** 2) / 0.02),  # green peak
        ]
    )  # (3, 31)
    yy, xx = np.mgrid[:height, :width] / max(height, width)
    abundance = np.stack([xx, 1 - xx * 0.5 + 0.3 * yy, 0.5 + 0.5 * np.sin(6 * yy + 3 * xx**2)])
    abundance = abundance + 0.05 * rng.random(abundance.shape)
    abundance = abundance / abundance.sum(axis=0, keepdims=True)  # (3, H, W)
    cube = np.einsum("kl,khw->lhw", endmembers, abundance)
    return np.clip(cube, 0.05, 0.95).astype(np.float32)


def clean_rgb(cube: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 RGB of ``cube`` through the CIE 1964 camera (NTIRE clean style)."""
    rgb = render_rgb(cube, cie1964().css, 1.0 / cie1964().css.sum(axis=1))
    return np.round(rgb * 255).astype(np.uint8)


def write_mat_v73(path: Path, cube: np.ndarray, *, bands: bool) -> None:
    """MATLAB v7.3-style HDF5 with ``cube`` seen by h5py as (31, W, H), ``bands`` (1, 31)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as mat:
        mat["cube"] = cube.transpose(0, 2, 1)  # (31, H, W) -> (31, W, H) as MATLAB stores it
        if bands:
            mat["bands"] = WAVELENGTHS_NM.astype(np.float64)[None, :]
        mat["norm_factor"] = np.array([[1.0]])


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Save (3, H, W) uint8 as PNG/JPEG by suffix (JPEG quality 95)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb.transpose(1, 2, 0)).save(path, quality=95)


def write_ntire2020(root: Path, train: int = 3, valid: int = 1, size=(40, 48)) -> Path:
    """NTIRE 2020 layout: *_Spectral/*.mat, *_Clean/*_clean.png, *_RealWorld/*_RealWorld.jpg."""
    for split, count, offset in (("Train", train, 0), ("Validation", valid, 100)):
        for i in range(offset + 1, offset + count + 1):
            name = f"ARAD_HS_{i:04d}"
            cube = smooth_cube(*size, seed=i)
            write_mat_v73(root / f"NTIRE2020_{split}_Spectral" / f"{name}.mat", cube, bands=False)
            rgb = clean_rgb(cube)
            write_image(root / f"NTIRE2020_{split}_Clean" / f"{name}_clean.png", rgb)
            write_image(root / f"NTIRE2020_{split}_RealWorld" / f"{name}_RealWorld.jpg", rgb)
    return root


def write_arad1k(root: Path, train: int = 3, valid: int = 1, size=(40, 48)) -> Path:
    """NTIRE 2022 layout: Train_Spectral/ARAD_1K_0001.mat (+ bands), Train_RGB/*.jpg, Valid_*."""
    for split, count, offset in (("Train", train, 0), ("Valid", valid, 900)):
        for i in range(offset + 1, offset + count + 1):
            name = f"ARAD_1K_{i:04d}"
            cube = smooth_cube(*size, seed=i)
            write_mat_v73(root / f"{split}_Spectral" / f"{name}.mat", cube, bands=True)
            write_image(root / f"{split}_RGB" / f"{name}.jpg", clean_rgb(cube))
    return root


def write_cube_tif(path: Path, cube: np.ndarray) -> Path:
    """31-band uint16 GeoTIFF in the CAVE layout (band tags, value_scale DN / 65535)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff", width=cube.shape[2], height=cube.shape[1], count=31, dtype="uint16"
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.round(cube * 65535).astype(np.uint16))
        dst.update_tags(value_scale="reflectance = DN / 65535")
        for band, wl in enumerate(WAVELENGTHS_NM, start=1):
            dst.update_tags(band, wavelength=str(wl), wavelength_units="nm")
    return path


def write_tile_pair(folder: Path, size: int = 64) -> tuple[Path, Path]:
    """An RGB GeoTIFF (1 m, EPSG:32618) and a 45-band hyperspectral GeoTIFF (385-715 nm,
    7.5 nm steps, reflectance x 10000 int16 with scale 1e-4) on a 2 m grid starting 3 m inside
    the RGB: each hyperspectral pixel is the mean of the 2x2 RGB-grid spectra it covers."""
    folder.mkdir(parents=True, exist_ok=True)
    cube = smooth_cube(size, size, seed=7)
    rgb_path = folder / "field_rgb.tif"
    with rasterio.open(
        rgb_path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs="EPSG:32618",
        transform=from_origin(500000.0, 4000000.0, 1.0, 1.0),
    ) as dst:
        dst.write(clean_rgb(cube))
    wavelengths = np.arange(385.0, 716.0, 7.5)  # 45 bands
    n = (size - 3) // 2  # 2 m pixels starting 3 m right of / below the RGB origin
    coarse = cube[:, 3 : 3 + 2 * n, 3 : 3 + 2 * n].reshape(31, n, 2, n, 2).mean(axis=(2, 4))
    flat = coarse.reshape(31, -1)  # (31, n*n)
    spectra = np.stack([np.interp(wavelengths, WAVELENGTHS_NM, flat[:, k]) for k in range(n * n)])
    spectra = spectra.T.reshape(len(wavelengths), n, n)
    hs_path = folder / "field_hs.tif"
    with rasterio.open(
        hs_path,
        "w",
        driver="GTiff",
        width=coarse.shape[2],
        height=coarse.shape[1],
        count=len(wavelengths),
        dtype="int16",
        crs="EPSG:32618",
        transform=from_origin(500003.0, 3999997.0, 2.0, 2.0),
    ) as dst:
        dst.write(np.round(spectra * 10000).astype(np.int16))
        dst.scales = [1e-4] * len(wavelengths)
        for band, wl in enumerate(wavelengths, start=1):
            dst.update_tags(band, wavelength=f"{wl:g}", wavelength_units="nm")
    return rgb_path, hs_path


def write_fake_vgg16(path: Path, seed: int = 0) -> Path:
    """Random VGG16 feature weights with torchvision key names (same layout as the real npz)."""
    rng = np.random.default_rng(seed)
    config = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    arrays, index, channels = {}, 0, 3
    for spec in config:
        if spec == "M":
            index += 1
            continue
        std = np.sqrt(2.0 / (channels * 9))
        arrays[f"features.{index}.weight"] = (
            rng.standard_normal((spec, channels, 3, 3)) * std
        ).astype(np.float16)
        arrays[f"features.{index}.bias"] = np.zeros(spec, dtype=np.float16)
        index += 2
        channels = spec
    np.savez(path, **arrays)
    return path
