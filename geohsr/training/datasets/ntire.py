"""NTIRE spectral-reconstruction challenge layouts (paired RGB and spectra).

NTIRE 2020 (``ntire2020`` clean track, ``ntire2020-realworld``): spectra ``ARAD_HS_0001.mat``
and RGB ``ARAD_HS_0001_clean.png`` / ``ARAD_HS_0001_RealWorld.jpg`` anywhere below the root
(e.g. ``NTIRE2020_Train_Spectral/``, ``NTIRE2020_Train_Clean/``). NTIRE 2022 (``arad1k``):
``Train_Spectral/ARAD_1K_0001.mat`` with ``Train_RGB/ARAD_1K_0001.jpg``, likewise ``Valid_*``.
A folder name containing ``valid`` marks validation scenes, one containing ``train`` training
scenes (the challenge's own split).

The ``.mat`` files are MATLAB v7.3 (HDF5): h5py returns ``cube`` transposed as
``(31, W, H)`` (e.g. (31, 512, 482)); it is turned into ``(31, H, W)`` here. Older MATLAB
files (v5, read with scipy) hold ``(H, W, 31)``. A ``bands`` entry other than 400..700 nm /
10 nm is resampled. Values are kept as stored (NTIRE cubes are already normalised).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from geohsr.exceptions import InputError, TrainingError
from geohsr.training.datasets.scene import Scene, SceneData
from geohsr.training.datasets.spectral_io import resample_cube


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise TrainingError(
            "reading NTIRE .mat files needs h5py: pip install 'geohsr[train]'"
        ) from err
    return h5py


def read_mat_cube(path: str | Path) -> np.ndarray:
    """``(31, H, W)`` float32 spectra of an NTIRE ``.mat`` file (v7.3 HDF5 or v5)."""
    path = Path(path)
    h5py = _h5py()
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as mat:
            cube = np.asarray(mat["cube"], dtype=np.float32).transpose(0, 2, 1)  # (31, H, W)
            bands = np.asarray(mat["bands"]).ravel() if "bands" in mat else None
    else:
        from scipy.io import loadmat

        mat = loadmat(path)
        cube = np.asarray(mat["cube"], dtype=np.float32).transpose(2, 0, 1)  # (31, H, W)
        bands = np.asarray(mat["bands"]).ravel() if "bands" in mat else None
    if bands is not None:
        if len(bands) != cube.shape[0]:
            raise InputError(f"{path}: {len(bands)} band wavelengths for {cube.shape[0]} bands")
        cube = resample_cube(cube, bands.astype(np.float64))
    return cube


def read_rgb_image(path: str | Path) -> np.ndarray:
    """``(3, H, W)`` uint8 RGB of a PNG/JPEG."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).transpose(2, 0, 1).copy()


def load_pair(mat_path: Path, rgb_path: Path) -> SceneData:
    """Decode an NTIRE pair; raises :class:`InputError` when the sizes differ."""
    cube = read_mat_cube(mat_path)
    rgb = read_rgb_image(rgb_path)
    if rgb.shape[1:] != cube.shape[1:]:
        raise InputError(
            f"{rgb_path.name} is {rgb.shape[1]}x{rgb.shape[2]} but {mat_path.name} is "
            f"{cube.shape[1]}x{cube.shape[2]}; RGB and spectra must show the same pixels"
        )
    return SceneData(cube, rgb=rgb, rgb_scale=1.0 / 255.0)


def _split_hint(path: Path, root: Path) -> str | None:
    parts = [p.lower() for p in path.relative_to(root).parts[:-1]]
    if any("valid" in p for p in parts):
        return "val"
    if any("train" in p for p in parts):
        return "train"
    return None


def _mat_size(path: Path) -> tuple[int, int]:
    h5py = _h5py()
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as mat:
            _, width, height = mat["cube"].shape
        return height, width
    return read_mat_cube(path).shape[1:]


def _paired_scenes(root: Path, kind: str, rgb_name: str) -> list[Scene]:
    """Scenes for every ``<stem>.mat`` with an RGB file named ``rgb_name.format(stem)``."""
    if not root.is_dir():
        raise InputError(f"{kind} data folder {root} not found; check the --data path")
    rgb_files = {p.name: p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg")}
    scenes = []
    for mat in sorted(root.rglob("*.mat")):
        rgb = rgb_files.get(rgb_name.format(mat.stem))
        if rgb is None:
            continue
        height, width = _mat_size(mat)
        scenes.append(
            Scene(
                name=mat.stem,
                kind=kind,
                key=f"{kind}:{mat.resolve()}",
                height=height,
                width=width,
                loader=partial(load_pair, mat, rgb),
                split=_split_hint(mat, root),
            )
        )
    if not scenes:
        raise InputError(
            f"no {kind} pairs in {root}: expected <name>.mat files with RGB "
            f"{rgb_name.format('<name>')} below it"
        )
    return scenes


def ntire2020_clean_scenes(root: str | Path) -> list[Scene]:
    """NTIRE 2020 clean track: ``*.mat`` + ``*_clean.png``."""
    return _paired_scenes(Path(root), "ntire2020", "{}_clean.png")


def ntire2020_realworld_scenes(root: str | Path) -> list[Scene]:
    """NTIRE 2020 real-world track: ``*.mat`` + ``*_RealWorld.jpg``."""
    return _paired_scenes(Path(root), "ntire2020-realworld", "{}_RealWorld.jpg")


def arad1k_scenes(root: str | Path) -> list[Scene]:
    """NTIRE 2022 / ARAD_1K: ``*_Spectral/<name>.mat`` + ``*_RGB/<name>.jpg``."""
    return _paired_scenes(Path(root), "arad1k", "{}.jpg")
