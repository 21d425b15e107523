"""Make the example scene: a small georeferenced RGB GeoTIFF with known spectra.

Every pixel is a real reflectance spectrum from the earthlib spectral library (measured
soils, sand, dry vegetation, roofs and pavements; green vegetation canopies simulated
with PROSAIL from measured leaf optics, as earthlib ships them), laid out procedurally as
fields, a town and a dry riverbed, then rendered to RGB through the CIE 1964 colour
matching functions at a fixed gain (a white reflector reads 255: reflectance-calibrated RGB,
so the reconstructed cube is reflectance) and quantised to uint8. The corner cut off at
the bottom left is nodata (0), like the edge of a swath.

    python examples/make_example_scene.py                  # writes examples/data/example_rgb.tif
    python examples/make_example_scene.py --refresh-spectra  # re-pick spectra (needs earthlib)

The chosen spectra live in ``examples/data/example_spectra.csv`` (committed), so the
ground-truth cube can be rebuilt with :func:`build_scene` without earthlib.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from geohsr.spectral import WAVELENGTHS_NM
from geohsr.spectral.cameras import cie1964
from geohsr.spectral.render import render_fixed_gain
from geohsr.training.datasets.synthetic_aerial import smooth_field

DATA = Path(__file__).resolve().parent / "data"
SPECTRA_CSV = DATA / "example_spectra.csv"
RGB_TIF = DATA / "example_rgb.tif"
HEIGHT, WIDTH = 500, 600
CRS = "EPSG:32633"  # UTM 33N
TRANSFORM = from_origin(512000.0, 5105000.0, 10.0, 10.0)  # 10 m pixels
SEED = 4

#: (scene class, earthlib LEVEL_3 types, brightness quantile of the pick within those types)
PICKS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("vegetation", ("canopy",), 0.25),
    ("vegetation", ("canopy",), 0.5),
    ("vegetation", ("canopy",), 0.75),
    ("vegetation", ("canopy",), 0.9),
    ("soil", ("soil",), 0.15),
    ("soil", ("soil",), 0.4),
    ("soil", ("soil",), 0.65),
    ("soil", ("soil",), 0.85),
    ("dry vegetation", ("litter",), 0.5),
    ("dry vegetation", ("npv",), 0.75),
    ("sand", ("sand",), 0.5),
    ("gravel", ("gravel",), 0.5),
    ("roof", ("comp_shingle",), 0.3),
    ("roof", ("tile",), 0.5),
    ("roof", ("metal",), 0.5),
    ("roof", ("wood_shingle",), 0.5),
    ("roof", ("comp_shingle",), 0.9),
    ("pavement", ("asphalt",), 0.5),
    ("pavement", ("road",), 0.6),
    ("concrete", ("sidewalk",), 0.6),
)


def refresh_spectra(path: Path = SPECTRA_CSV) -> None:
    """Pick the spectra from earthlib and store them (400-700 nm, 10 nm) in ``path``."""
    import earthlib.config
    import earthlib.read

    spectra, _, sensor = earthlib.read.envi_library(earthlib.config.full_endmember_path)
    centres_nm = np.round(np.asarray(sensor.band_centers) * 1000).astype(int)
    columns = [int(np.flatnonzero(centres_nm == wl)[0]) for wl in WAVELENGTHS_NM]
    visible = spectra[:, columns]  # (n, 31)
    meta = earthlib.config.full_metadata
    rows = []
    for scene_class, types, quantile in PICKS:
        index = np.flatnonzero(
            meta["LEVEL_3"].isin(types).to_numpy() & (visible.min(axis=1) > 0.005)
        )
        order = index[np.argsort(visible[index].mean(axis=1))]
        i = int(order[int(quantile * (len(order) - 1))])
        rows.append(
            [
                scene_class,
                meta["NAME"][i],
                meta["LEVEL_3"][i],
                meta["SOURCE"][i],
                *(f"{v:.5f}" for v in visible[i]),
            ]
        )
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["class", "earthlib_name", "material", "source", *(f"r{wl}" for wl in WAVELENGTHS_NM)]
        )
        writer.writerows(rows)


def load_spectra(path: Path = SPECTRA_CSV) -> tuple[list[dict[str, str]], np.ndarray]:
    """The stored spectra: row metadata and reflectance ``(n, 31)`` float32."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = np.array([[float(r[f"r{wl}"]) for wl in WAVELENGTHS_NM] for r in rows], np.float32)
    return rows, table


def land_cover(rows: list[dict[str, str]], rng: np.random.Generator) -> np.ndarray:
    """Index into the spectra table for every pixel ``(HEIGHT, WIDTH)`` int."""
    by_class: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_class.setdefault(row["class"], []).append(i)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]

    # fields: Voronoi cells of vegetation, soil and dry vegetation
    seeds = rng.uniform([0, 0], [HEIGHT, WIDTH], size=(45, 2))
    cell = np.argmin((y[..., None] - seeds[:, 0]) ** 2 + (x[..., None] - seeds[:, 1]) ** 2, axis=-1)
    field_class = rng.choice(
        ["vegetation", "soil", "dry vegetation"], p=[0.5, 0.32, 0.18], size=len(seeds)
    )
    cell_spectrum = np.array([rng.choice(by_class[c]) for c in field_class])
    labels = cell_spectrum[cell]

    # a dry riverbed: meandering band of sand with gravel banks
    centre = 0.62 * HEIGHT + 40 * np.sin(x / 55.0) + 15 * np.sin(x / 17.0 + 1)
    distance = np.abs(y - centre)
    labels[distance < 13] = by_class["gravel"][0]
    labels[distance < 9] = by_class["sand"][0]

    # a town: blocks of roofs and yards between paved streets
    town = (x >= 330) & (x < 570) & (y >= 30) & (y < 230)
    block_y, block_x = (y - 30) // 40, (x - 330) // 48
    in_block_y, in_block_x = (y - 30) % 40, (x - 330) % 48
    street = (in_block_y < 5) | (in_block_x < 5)
    roofs = np.array(by_class["roof"])[(block_y * 7 + block_x * 3) % len(by_class["roof"])]
    building = (in_block_y >= 10) & (in_block_y < 32) & (in_block_x >= 11) & (in_block_x < 40)
    yard = np.array(by_class["vegetation"])[(block_x + block_y) % len(by_class["vegetation"])]
    labels = np.where(town, np.where(building, roofs, yard), labels)
    labels = np.where(town & street, by_class["pavement"][0], labels)
    labels[town & (in_block_y >= 32) & (in_block_y < 35) & ~street] = by_class["concrete"][0]

    # a main road crossing the scene
    road = np.abs((y - 0.35 * x - 60) / np.hypot(1, 0.35)) < 3.0
    labels[road & ~town] = by_class["pavement"][1]
    return labels


def build_scene(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ground truth: cube ``(31, H, W)`` float32 reflectance, label map ``(H, W)`` int
    (row of the spectra table) and valid mask ``(H, W)`` bool."""
    rows, table = load_spectra()
    rng = np.random.default_rng(seed)
    labels = land_cover(rows, rng)
    natural = np.isin([r["class"] for r in rows], ["vegetation", "soil", "dry vegetation"])
    shading = 1.0 + 0.12 * smooth_field(rng, HEIGHT, WIDTH, scale=40.0)  # moisture, slope
    shading *= 1.0 + 0.04 * smooth_field(rng, HEIGHT, WIDTH, scale=2.5)  # crop rows, tufts
    brightness = np.where(natural[labels], shading, 1.0).astype(np.float32)
    cube = table[labels].transpose(2, 0, 1) * brightness  # (31, H, W)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    valid = x + (HEIGHT - 1 - y) >= 70  # the swath edge cuts the bottom-left corner
    return cube.astype(np.float32), labels, valid


def render(cube: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(3, H, W)`` through the CIE 1964 camera at exposure 1 (reflectance 1 ->
    255); 0 where not ``valid``."""
    rgb = np.round(render_fixed_gain(cube, cie1964().normalised, 1.0) * 255)
    rgb = np.clip(rgb, 1, 255).astype(np.uint8)  # 0 is reserved for nodata
    rgb[:, ~valid] = 0
    return rgb


def write_example(path: Path = RGB_TIF) -> Path:
    """Write the example RGB GeoTIFF (deflate, tiled, nodata 0) and return its path."""
    cube, _, valid = build_scene()
    rgb = render(cube, valid)
    profile = dict(
        driver="GTiff",
        width=WIDTH,
        height=HEIGHT,
        count=3,
        dtype="uint8",
        crs=CRS,
        transform=TRANSFORM,
        nodata=0,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=2,
        photometric="RGB",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb)
        dst.update_tags(
            description="geohsr example scene: earthlib spectra rendered "
            "through the CIE 1964 10 degree observer at a fixed gain (reflectance 1 = 255)",
            seed=str(SEED),
        )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--refresh-spectra",
        action="store_true",
        help="re-pick the spectra from earthlib (pip install earthlib)",
    )
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    if args.refresh_spectra or not SPECTRA_CSV.exists():
        refresh_spectra()
    path = write_example()
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) from {SPECTRA_CSV.name}")


if __name__ == "__main__":
    main()
