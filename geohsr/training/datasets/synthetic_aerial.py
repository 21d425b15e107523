"""Synthetic aerial scenes built from measured reflectance spectra (``synthetic-aerial:COUNT``).

CAVE holds laboratory objects; aerial imagery holds fields, tree crowns, roads, roofs, soil,
water, shadows and mixed pixels. This dataset kind paints such scenes procedurally with real
spectra from the earthlib spectral library (Cardoso-Fernandes / Anderson et al., PyPI
``earthlib``, MIT; 7,261 spectra: measured soils, non-photosynthetic vegetation and urban
materials, and PROSAIL-simulated canopies), so the network sees remote-sensing spectra:

- fields: Voronoi cells of vegetation, soil or dry vegetation, each a smooth per-pixel mixture
  of two spectra of its class (texture), with moisture/relief shading;
- water (a river or a pond, in some scenes): earthlib has no water, so water is a low
  reflectance (2-8 %) synthetic spectrum, clear (blue) to turbid (green-brown) — not measured;
- roads (pavement spectra), towns (roof rectangles on yards, with cast shadows) and tree crowns
  (canopy spectra, brighter at the sunlit side, with cast shadows);
- a smooth illumination field, and mixed pixels: everything is painted at twice the output
  resolution and averaged 2 x 2.

Scene ``i`` of ``COUNT`` is a pure function of ``i`` (seeded), 256 x 256 pixels, reflectance
in [0, 1]; it is built when first used (about a second) and cached like any scene.

``synthetic-aerial-varied:COUNT`` paints layouts of the same kind (from seeds of its own)
with **spectral variability**, so a network cannot learn the scenes by recognising library
members: every library spectrum drawn is multiplied by a smooth random positive curve
(:func:`vary_spectrum`), fields mix spectra of different classes (sparse canopy over soil, dry
grass), and water, roads and roofs mix their spectrum per pixel with a varied copy of it (tree
crowns keep one varied spectrum each, shaded). Why: the weights of 2026-12 trained on the
plain kind reconstructed *unseen* plain scenes with MRAE 0.084 against 0.130 for their own
classical base (camera known), but real airborne cubes slightly worse than that base (0.0445
against 0.0427): they had learnt the library, not reflectance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from geohsr.exceptions import InputError, TrainingError
from geohsr.spectral import WAVELENGTHS_NM
from geohsr.training.datasets.scene import Scene, SceneData

SCENE_SIZE = 256
#: the data kinds of this module (``KIND:COUNT``): plain and with spectral variability; their
#: scenes are a pure function of kind and index, so any machine can rebuild them
PLAIN_KIND, VARIED_KIND = "synthetic-aerial", "synthetic-aerial-varied"
SYNTHETIC_KINDS = (PLAIN_KIND, VARIED_KIND)
#: seed namespace of the scene generator
SEED_BASE = 20261130
#: earthlib LEVEL_3 types of each material group
MATERIALS: dict[str, tuple[str, ...]] = {
    "vegetation": ("canopy",),
    "soil": ("soil", "sand", "dirt", "gravel"),
    "dry_vegetation": ("litter", "bark", "wood", "npv"),
    "roof": ("comp_shingle", "wood_shingle", "concrete_tile", "metal", "tile", "paint"),
    "pavement": ("road", "parking_lot", "asphalt", "sidewalk", "driveway", "bridge"),
}


@dataclass(frozen=True)
class SpectralLibrary:
    """Reflectance spectra ``(n, 31)`` float32 at 400..700 nm and the rows of each group."""

    spectra: np.ndarray
    groups: dict[str, np.ndarray]

    def draw(self, group: str, rng: np.random.Generator) -> np.ndarray:
        """One spectrum ``(31,)`` of ``group``."""
        return self.spectra[int(rng.choice(self.groups[group]))]


@functools.lru_cache(maxsize=1)
def earthlib_library() -> SpectralLibrary:
    """The earthlib spectra at 400..700 nm / 10 nm, grouped by :data:`MATERIALS`.

    Raises :class:`TrainingError` when earthlib is not installed.
    """
    try:
        import earthlib.config
        import earthlib.read
    except ImportError as err:
        raise TrainingError(
            "synthetic-aerial scenes need the earthlib spectral library: "
            'pip install "geohsr[train]" (or pip install earthlib)'
        ) from err
    spectra, _, sensor = earthlib.read.envi_library(earthlib.config.full_endmember_path)
    centres_nm = np.round(np.asarray(sensor.band_centers) * 1000).astype(int)
    columns = [int(np.flatnonzero(centres_nm == wl)[0]) for wl in WAVELENGTHS_NM]
    visible = np.asarray(spectra[:, columns], dtype=np.float32)  # (n, 31)
    plausible = (visible.min(axis=1) > 0.005) & (visible.max(axis=1) < 1.0)
    level3 = earthlib.config.full_metadata["LEVEL_3"].to_numpy()
    groups = {
        name: np.flatnonzero(np.isin(level3, types) & plausible)
        for name, types in MATERIALS.items()
    }
    return SpectralLibrary(visible, groups)


def water_spectrum(rng: np.random.Generator) -> np.ndarray:
    """A synthetic water-body reflectance ``(31,)``: 2-8 %, from clear (blue peak) to turbid
    (green-brown peak), falling towards the red where water absorbs."""
    wl = WAVELENGTHS_NM.astype(np.float32)
    turbidity = rng.uniform(0, 1)
    peak = 470 + 110 * turbidity
    shape = np.exp(-(((wl - peak) / (60 + 40 * turbidity)) ** 2))
    red_absorption = 1 / (1 + np.exp((wl - 600) / 15))
    level = rng.uniform(0.02, 0.08)
    return (level * (0.25 + 0.75 * shape) * (0.4 + 0.6 * red_absorption)).astype(np.float32)


#: standard deviation of the Legendre coefficients of :func:`vary_spectrum`'s log-curve, per
#: degree 1..4 (a degree-1 coefficient of 0.15 tilts the spectrum by about +-15 % at its ends)
VARIATION_SIGMA = (0.15, 0.1, 0.07, 0.05)


def vary_spectrum(spectrum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``spectrum`` ``(31,)`` times ``exp(sum_k a_k P_k(t))``, ``P_k`` the Legendre polynomials
    of degree 1-4 on ``t`` in [-1, 1] over 400-700 nm and ``a_k ~ N(0, VARIATION_SIGMA[k])``:
    a smooth, positive change of shape (pigment, moisture, age, residual atmospheric error),
    clipped to [0, 1]."""
    t = np.linspace(-1.0, 1.0, len(WAVELENGTHS_NM))
    coefficients = np.concatenate([[0.0], rng.normal(0.0, VARIATION_SIGMA)])
    curve = np.exp(np.polynomial.legendre.legval(t, coefficients))
    return np.clip(spectrum * curve, 0.0, 1.0).astype(np.float32)


class _Painter:
    """Draws the spectra a scene is painted with: library members as they are, or (with a
    ``variation`` generator) varied copies, mixed per pixel with a second varied copy."""

    def __init__(
        self, library: SpectralLibrary, variation: np.random.Generator | None, fine: int
    ) -> None:
        self.library, self.variation, self.fine = library, variation, fine
        self._texture: np.ndarray | None = None

    def draw(self, group: str, rng: np.random.Generator) -> np.ndarray:
        spectrum = self.library.draw(group, rng)
        return spectrum if self.variation is None else vary_spectrum(spectrum, self.variation)

    def field_groups(self, group: str) -> tuple[str, str]:
        """The classes a field cell of ``group`` mixes: its own twice, or (varied) sometimes
        a canopy or dry vegetation over soil."""
        if self.variation is None or self.variation.random() < 0.5:
            return group, group
        return group, str(self.variation.choice(["soil", "dry_vegetation", "vegetation"]))

    def fill(self, cube: np.ndarray, mask: np.ndarray, spectrum: np.ndarray) -> None:
        """Paint ``spectrum`` on ``mask``; varied: mixed per pixel with a varied copy."""
        if self.variation is None:
            cube[:, mask] = spectrum[:, None]
            return
        if self._texture is None:
            self._texture = 0.5 + 0.5 * smooth_field(self.variation, self.fine, self.fine, 4.0)
        other = vary_spectrum(spectrum, self.variation)
        mix = self._texture[mask] * self.variation.uniform(0.2, 1.0)
        cube[:, mask] = spectrum[:, None] * (1 - mix) + other[:, None] * mix


def smooth_field(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """A smooth random field ``(height, width)`` in about [-1, 1] (sum of random plane waves)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    field = np.zeros((height, width), np.float32)
    for _ in range(6):
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        frequency = rng.uniform(0.5, 1.5) / scale
        field += np.sin(frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase)
    return field / 6 * 2


def _shade(cube: np.ndarray, mask: np.ndarray, factor: float) -> None:
    cube[:, mask] *= factor


def build_aerial_scene(
    library: SpectralLibrary,
    rng: np.random.Generator,
    size: int,
    variation: np.random.Generator | None = None,
) -> np.ndarray:
    """One scene ``(31, size, size)`` float32 reflectance (see the module docstring);
    ``variation``: the generator of the spectral variability (None: library spectra as they
    are; the layout drawn from ``rng`` is the same either way)."""
    fine = 2 * size
    painter = _Painter(library, variation, fine)
    y, x = np.mgrid[0:fine, 0:fine].astype(np.float32)
    cube = np.empty((len(WAVELENGTHS_NM), fine, fine), np.float32)
    # fields
    seeds = rng.uniform(0, fine, size=(int(rng.integers(8, 40)), 2))
    cell = np.argmin((y[..., None] - seeds[:, 0]) ** 2 + (x[..., None] - seeds[:, 1]) ** 2, -1)
    texture = 0.5 + 0.5 * smooth_field(rng, fine, fine, scale=rng.uniform(3, 15))
    classes = rng.choice(
        ["vegetation", "soil", "dry_vegetation"], p=[0.45, 0.35, 0.2], size=len(seeds)
    )
    for k, group in enumerate(classes):
        mask = cell == k
        first, second = painter.field_groups(group)
        a, b = painter.draw(first, rng), painter.draw(second, rng)
        mix = np.clip(texture[mask] * rng.uniform(0.3, 1.0), 0, 1)
        cube[:, mask] = a[:, None] * mix + b[:, None] * (1 - mix)
    cube *= 1 + 0.12 * smooth_field(rng, fine, fine, scale=rng.uniform(20, 80))  # moisture, relief
    # water: a river or a pond
    if rng.random() < 0.35:
        if rng.random() < 0.5:
            centre = rng.uniform(0.2, 0.8) * fine + rng.uniform(10, 40) * np.sin(
                x / rng.uniform(30, 90)
            )
            water = np.abs(y - centre) < rng.uniform(6, 30)
        else:
            cy, cx = rng.uniform(0, fine, 2)
            water = (y - cy) ** 2 / rng.uniform(15, 60) ** 2 + (x - cx) ** 2 / rng.uniform(
                15, 60
            ) ** 2 < 1
        painter.fill(cube, water, water_spectrum(rng))
    # roads
    for _ in range(int(rng.integers(0, 4))):
        angle, offset = rng.uniform(0, np.pi), rng.uniform(-0.5, 0.5) * fine
        distance = np.abs((x - fine / 2) * np.sin(angle) - (y - fine / 2) * np.cos(angle) - offset)
        painter.fill(cube, distance < rng.uniform(3, 10), painter.draw("pavement", rng))
    sun = rng.uniform(0, 2 * np.pi)
    shadow_dy, shadow_dx = np.sin(sun), np.cos(sun)
    # a town: roofs with cast shadows
    if rng.random() < 0.5:
        y0, x0 = rng.uniform(0, fine * 0.6, 2)
        for _ in range(int(rng.integers(5, 40))):
            by, bx = y0 + rng.uniform(0, fine * 0.4), x0 + rng.uniform(0, fine * 0.4)
            h, w = rng.uniform(8, 30, 2)
            length = rng.uniform(3, 12)
            sy, sx = by + shadow_dy * length, bx + shadow_dx * length
            _shade(
                cube, (y >= sy) & (y < sy + h) & (x >= sx) & (x < sx + w), rng.uniform(0.25, 0.45)
            )
            roof = (y >= by) & (y < by + h) & (x >= bx) & (x < bx + w)
            painter.fill(cube, roof, painter.draw("roof", rng))
    # tree crowns with cast shadows, brighter on the sunlit side
    for _ in range(int(rng.integers(0, 120))):
        cy, cx, radius = rng.uniform(0, fine), rng.uniform(0, fine), rng.uniform(3, 12)
        window = (
            slice(int(max(cy - 3 * radius, 0)), int(cy + 3 * radius)),
            slice(int(max(cx - 3 * radius, 0)), int(cx + 3 * radius)),
        )
        wy, wx = y[window] - cy, x[window] - cx
        shadow = (wy - shadow_dy * radius) ** 2 + (wx - shadow_dx * radius) ** 2 < radius**2
        crown = wy**2 + wx**2 < radius**2
        view = cube[:, window[0], window[1]]
        view[:, shadow & ~crown] *= rng.uniform(0.3, 0.5)
        lit = 0.8 + 0.3 * (-(wy * shadow_dy + wx * shadow_dx) / radius)
        view[:, crown] = painter.draw("vegetation", rng)[:, None] * lit[crown]
    cube *= rng.uniform(0.85, 1.05) + 0.05 * smooth_field(
        rng, fine, fine, scale=200
    )  # illumination
    cube = cube.reshape(len(WAVELENGTHS_NM), size, 2, size, 2).mean(axis=(2, 4))
    return np.clip(cube, 0.0, 1.0).astype(np.float32)


def synthetic_aerial_scenes(count: str, *, varied: bool = False) -> list[Scene]:
    """``COUNT`` seeded synthetic aerial scenes (``synthetic-aerial:64``; ``varied``:
    ``synthetic-aerial-varied:64``, with spectral variability), built lazily."""
    kind = VARIED_KIND if varied else PLAIN_KIND
    try:
        n = int(count)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{kind}:{count}: give the number of scenes, e.g. {kind}:64")

    def loader(index: int):
        def load() -> SceneData:
            # varied scenes have layouts of their own; plain ones keep their seeds
            rng = np.random.default_rng([SEED_BASE, index, 1] if varied else [SEED_BASE, index])
            variation = np.random.default_rng([SEED_BASE, index, 2]) if varied else None
            return SceneData(build_aerial_scene(earthlib_library(), rng, SCENE_SIZE, variation))

        return load

    prefix = "aerial_varied" if varied else "aerial"
    return [
        Scene(f"{prefix}_{i:04d}", kind, f"{kind}:{i}", SCENE_SIZE, SCENE_SIZE, loader(i))
        for i in range(n)
    ]
