"""Representative pixels of a cube for the preview: the medoids of a few spectral clusters.

A seeded k-means (k-means++ start, Lloyd iterations; numpy only) runs on the spectra of a
decimated cube, over pixels away from the image edges and from nodata, leaving out the tenth
of them that differ most from their neighbours (noise, outliers, mixed pixels on boundaries).
Each cluster of at least 2 % of those pixels is shown by its medoid (the member with the
smallest summed distance to the others). Deterministic for a given cube.
"""

from __future__ import annotations

import numpy as np

#: distance kept from the image edges and nodata, as a fraction of the shorter side
MARGIN_FRACTION = 0.04
#: spectra clustered (at most; an evenly spaced subsample beyond)
MAX_SAMPLES = 20_000
#: cluster members compared to find a medoid (at most)
MAX_MEDOID_MEMBERS = 1_000
KMEANS_ITERATIONS = 50
#: share of the eligible pixels, the least like their neighbours, never picked
HETEROGENEOUS_SHARE = 0.10
#: clusters smaller than this share of the clustered pixels are outliers, not shown
MIN_CLUSTER_SHARE = 0.02


def eroded(valid: np.ndarray, margin: int) -> np.ndarray:
    """``valid`` ``(h, w)`` with every pixel within ``margin`` (square) of an invalid pixel
    or of the image edge removed."""
    if margin <= 0:
        return valid.copy()
    bad = np.pad(~valid, margin, constant_values=True).astype(np.int32)
    total = np.pad(bad.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    size, (height, width) = 2 * margin + 1, valid.shape
    window = (
        total[size : size + height, size : size + width]
        - total[:height, size : size + width]
        - total[size : size + height, :width]
        + total[:height, :width]
    )
    return window == 0


def eligible_mask(valid: np.ndarray) -> np.ndarray:
    """Pixels that may be picked: valid, and at least a margin (4 % of the shorter side, at
    least 1 pixel) away from the edges and nodata; the margin shrinks when nothing is left."""
    margin = max(1, round(MARGIN_FRACTION * min(valid.shape)))
    while margin > 0:
        mask = eroded(valid, margin)
        if mask.any():
            return mask
        margin //= 2
    return valid.copy()


def local_anomaly(cube: np.ndarray) -> np.ndarray:
    """``(h, w)``: distance of each spectrum of ``(31, h, w)`` from the mean of its four
    neighbours (NaN on the image edge and next to nodata)."""
    padded = np.pad(cube, ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)
    neighbours = (
        padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    ) / 4
    return np.sqrt(((cube - neighbours) ** 2).sum(axis=0))


def candidate_mask(cube: np.ndarray) -> np.ndarray:
    """:func:`eligible_mask` of the valid pixels, less the :data:`HETEROGENEOUS_SHARE` of
    them with the largest :func:`local_anomaly`."""
    mask = eligible_mask(np.isfinite(cube).all(axis=0))
    if not mask.any():
        return mask
    anomaly = local_anomaly(cube)
    limit = np.nanpercentile(anomaly[mask], 100 * (1 - HETEROGENEOUS_SHARE))
    return mask & (anomaly <= limit)


def _squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(n, k)`` squared Euclidean distances, never negative."""
    cross = points @ centres.T
    squared = (points**2).sum(1)[:, None] - 2 * cross + (centres**2).sum(1)[None, :]
    return np.maximum(squared, 0.0)


def _initial_centres(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding; fewer than ``k`` centres when the points have fewer distinct values."""
    centres = [points[rng.integers(len(points))]]
    while len(centres) < k:
        nearest = _squared_distances(points, np.asarray(centres)).min(1)
        if nearest.sum() <= 0:
            break
        centres.append(points[rng.choice(len(points), p=nearest / nearest.sum())])
    return np.asarray(centres)


def kmeans(
    points: np.ndarray, k: int, *, seed: int = 0, iterations: int = KMEANS_ITERATIONS
) -> np.ndarray:
    """Cluster labels ``(n,)`` of ``points`` ``(n, d)``: k-means++ seeded with ``seed``, then
    Lloyd iterations; empty clusters are dropped, labels are ``0..clusters-1``."""
    points = np.asarray(points, dtype=np.float64)
    centres = _initial_centres(points, k, np.random.default_rng(seed))
    labels = _squared_distances(points, centres).argmin(1)
    for _ in range(iterations):
        used = np.unique(labels)
        centres = np.stack([points[labels == j].mean(0) for j in used])
        updated = _squared_distances(points, centres).argmin(1)
        if np.array_equal(updated, np.searchsorted(used, labels)):
            break
        labels = updated
    return np.unique(labels, return_inverse=True)[1]


def medoid(points: np.ndarray) -> int:
    """Index of the point of ``points`` ``(n, d)`` with the smallest summed distance to the
    others (over an evenly spaced subsample of large sets)."""
    candidates = _evenly_spaced(len(points), MAX_MEDOID_MEMBERS)
    subset = np.asarray(points[candidates], dtype=np.float64)
    distances = np.sqrt(_squared_distances(subset, subset))
    return int(candidates[distances.sum(1).argmin()])


def _evenly_spaced(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` indexes spread evenly over ``range(n)``."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.intp))


def pick_pixels(cube: np.ndarray, count: int = 4, *, seed: int = 0) -> list[tuple[int, int]]:
    """Up to ``count`` representative pixels ``(row, col)`` of a ``(31, h, w)`` cube (NaN =
    nodata): the medoids of ``count`` spectral clusters (largest cluster first), never on the
    image edge, next to nodata or a noisy outlier. Fewer when the cube has fewer distinct
    spectra or some clusters are outliers (:data:`MIN_CLUSTER_SHARE`)."""
    rows, cols = np.nonzero(candidate_mask(cube))
    if rows.size == 0 or count < 1:
        return []
    sample = _evenly_spaced(rows.size, MAX_SAMPLES)
    rows, cols = rows[sample], cols[sample]
    spectra = cube[:, rows, cols].T.astype(np.float64)  # (n, 31)
    labels = kmeans(spectra, count, seed=seed)
    sizes = np.bincount(labels)
    chosen = []
    for cluster in sorted(range(sizes.size), key=lambda j: (-sizes[j], j)):
        if chosen and sizes[cluster] < MIN_CLUSTER_SHARE * rows.size:
            break
        members = np.flatnonzero(labels == cluster)
        best = members[medoid(spectra[members])]
        chosen.append((int(rows[best]), int(cols[best])))
    return chosen
