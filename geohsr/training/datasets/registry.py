"""``--data KIND:PATH`` parsing and the train/validation split.

Kinds: ``ntire2020`` / ``ntire2020-realworld`` (NTIRE 2020 clean / real-world layout),
``arad1k`` (NTIRE 2022), ``cubes`` or its alias ``cave`` (spectral cubes without RGB),
``tiles`` (user RGB + hyperspectral pairs), ``synthetic-aerial`` (``synthetic-aerial:COUNT``
seeded aerial scenes painted with measured spectra) and ``synthetic-aerial-varied`` (the same
with spectral variability).

Split rules, in order: ``tiles`` scenes are split spatially (the last ``val_fraction`` of the
rows validates, the rest trains); scenes named in ``val_names`` validate (names are file stems,
e.g. ``flowers_ms``); otherwise a layout's own split (NTIRE ``Valid`` folders) when present;
otherwise a seeded random ``val_fraction`` of the scenes (at least one when two or more).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from geohsr.exceptions import InputError
from geohsr.training.datasets.ntire import (
    arad1k_scenes,
    ntire2020_clean_scenes,
    ntire2020_realworld_scenes,
)
from geohsr.training.datasets.scene import Scene
from geohsr.training.datasets.spectral_cubes import spectral_cube_scenes
from geohsr.training.datasets.synthetic_aerial import (
    PLAIN_KIND,
    VARIED_KIND,
    synthetic_aerial_scenes,
)
from geohsr.training.datasets.user_tiles import user_tile_scenes

DATA_KINDS: dict[str, Callable[[str], list[Scene]]] = {
    "ntire2020": ntire2020_clean_scenes,
    "ntire2020-realworld": ntire2020_realworld_scenes,
    "arad1k": arad1k_scenes,
    "cubes": spectral_cube_scenes,
    "cave": lambda path: spectral_cube_scenes(path, kind="cave"),
    "tiles": user_tile_scenes,
    PLAIN_KIND: synthetic_aerial_scenes,
    VARIED_KIND: lambda count: synthetic_aerial_scenes(count, varied=True),
}
SPATIAL_SPLIT_KINDS = ("tiles",)


def parse_data_spec(spec: str) -> list[Scene]:
    """Scenes of one ``KIND:PATH`` spec (see module docstring)."""
    kind, sep, path = spec.partition(":")
    if not sep or not path or kind not in DATA_KINDS:
        raise InputError(
            f"bad --data {spec!r}; use KIND:PATH with KIND one of {', '.join(DATA_KINDS)} "
            "(e.g. cave:../shared/data/cave or tiles:rgb.tif,hyper.tif)"
        )
    return DATA_KINDS[kind](path)


def load_data_specs(specs: Sequence[str]) -> list[Scene]:
    """Scenes of all specs, in order; duplicate scene names get a ``#n`` suffix."""
    scenes: list[Scene] = []
    seen: dict[str, int] = {}
    for spec in specs:
        for scene in parse_data_spec(spec):
            count = seen.get(scene.name, 0)
            seen[scene.name] = count + 1
            if count:
                scene = replace(scene, name=f"{scene.name}#{count}")
            scenes.append(scene)
    if not scenes:
        raise InputError("no data given; pass --data KIND:PATH at least once")
    return scenes


def split_scenes(
    scenes: Sequence[Scene],
    *,
    val_fraction: float = 0.2,
    val_names: Sequence[str] = (),
    seed: int = 0,
) -> tuple[list[Scene], list[Scene]]:
    """``(train, val)`` scenes by the rules in the module docstring."""
    train: list[Scene] = []
    val: list[Scene] = []
    whole = []
    for scene in scenes:
        if scene.kind in SPATIAL_SPLIT_KINDS and val_fraction > 0:
            train.append(scene.with_rows(0.0, 1.0 - val_fraction, "train"))
            val.append(scene.with_rows(1.0 - val_fraction, 1.0, "val"))
        else:
            whole.append(scene)
    if val_names:
        unknown = sorted(set(val_names) - {s.name for s in whole})
        if unknown:
            raise InputError(
                f"--val-scenes {', '.join(unknown)} not found; scenes are: "
                f"{', '.join(s.name for s in whole)}"
            )
        val += [s for s in whole if s.name in val_names]
        train += [s for s in whole if s.name not in val_names]
    elif any(s.split == "val" for s in whole):
        val += [s for s in whole if s.split == "val"]
        train += [s for s in whole if s.split != "val"]
    elif whole:
        count = int(round(val_fraction * len(whole)))
        if len(whole) >= 2 and val_fraction > 0:
            count = min(max(count, 1), len(whole) - 1)
        chosen = set(np.random.default_rng(seed).permutation(len(whole))[:count].tolist())
        val += [s for i, s in enumerate(whole) if i in chosen]
        train += [s for i, s in enumerate(whole) if i not in chosen]
    return train, val
