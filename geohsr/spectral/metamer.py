"""Metamer sets: the spectra that render exactly to a given RGB through a known camera.

For a normalised response ``Cn`` (3, 31), the spectra ``s`` with ``Cn s = rgb`` are
``s = A rgb + b`` with the fundamental-metamer matrix ``A = Cn^T (Cn Cn^T)^-1`` (31, 3) and
any metameric black ``b`` (``Cn b = 0``). Projecting a reconstruction ``p`` onto that set,
``p + A (rgb - Cn p)``, keeps its metameric black and replaces the rest by what the RGB says:
Lin & Finlayson, "Physically Plausible Spectral Reconstruction", Sensors 20(21), 2020.

Reflectance cannot be negative, so :func:`project_nonnegative` projects onto the part of the
set with ``s >= 0``: the closest such spectrum to ``p``, ``s = max(0, p + Cn^T lam)`` with
``lam`` (3 per pixel) solving ``Cn max(0, p + Cn^T lam) = rgb``. A few rounds of alternating
projection (exact projection, clip at 0) get most pixels there; the rest are finished with a
damped Newton method on the (convex) dual. RGB that no non-negative spectrum renders to
(noise, JPEG artefacts, out-of-gamut values), or only an implausible spike does, keep the
alternating result: their re-rendering error can exceed 1/255.
"""

from __future__ import annotations

import numpy as np
import torch

#: RGB values at or above this level are treated as clipped (saturated) and not projected.
SATURATION_LEVEL = 1.0 - 0.5 / 255.0
#: pixels whose re-rendering error is above this fraction of their brightest channel after the
#: alternating rounds get Newton steps (relative tolerances keep the exposure equivariance)
NEWTON_TOLERANCE = 0.5 / 255.0
#: a Newton result replaces the alternating one only if it re-renders within this fraction ...
ACCEPT_ERROR = 1.0 / 255.0
#: ... and stays below this multiple of the larger of the prediction's and the RGB's maximum
#: (at the edge of the gamut the exact solution can be an implausible spike)
PLAUSIBLE_FACTOR = 3.0


def fundamental_metamer_matrix(css_normalised: np.ndarray) -> np.ndarray:
    """``A = Cn^T (Cn Cn^T)^-1``, shape ``(31, 3)`` float64 (``Cn A = I``).

    ``css_normalised`` is ``(3, 31)`` (see :func:`geohsr.spectral.cameras.normalise_css`).
    """
    cn = np.asarray(css_normalised, dtype=np.float64)
    return cn.T @ np.linalg.inv(cn @ cn.T)


def _dual(p: torch.Tensor, lam: torch.Tensor, rgb: torch.Tensor, cn: torch.Tensor):
    """Dual objective ``0.5 |max(0, z)|^2 - lam . rgb`` with ``z = p + Cn^T lam``, per pixel."""
    z = p + (lam[:, None, :] @ cn)[:, 0]
    s = z.clamp_min(0.0)
    return 0.5 * (s * s).sum(-1) - (lam * rgb).sum(-1), s, z


def _solve3(matrix: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Solve ``(N, 3, 3) x = (N, 3)`` in closed form (Cramer's rule; cheaper than LAPACK here)."""
    a, b, c = matrix[:, 0], matrix[:, 1], matrix[:, 2]
    bc, ca, ab = torch.cross(b, c, dim=-1), torch.cross(c, a, dim=-1), torch.cross(a, b, dim=-1)
    det = (a * bc).sum(-1, keepdim=True)
    inverse_t = torch.stack([bc, ca, ab], dim=1) / det[..., None]  # rows of inv^T
    return (vector[:, None, :] @ inverse_t)[:, 0]


def newton_nonnegative(
    p: torch.Tensor,
    rgb: torch.Tensor,
    cn: torch.Tensor,
    *,
    iterations: int = 20,
    tolerance: float = NEWTON_TOLERANCE,
) -> torch.Tensor:
    """Closest ``s >= 0`` to ``p`` ``(N, 31)`` with ``cn s = rgb`` (``cn`` (N, 3, 31), ``rgb``
    (N, 3)): damped semismooth Newton on the 3 dual variables per pixel, float64. Pixels stop
    once they re-render within ``tolerance`` times their brightest channel (relative, so the
    result scales with the exposure)."""
    eye = torch.eye(3, dtype=p.dtype, device=p.device)
    lam = _solve3(cn @ cn.transpose(1, 2), rgb - (cn @ p[:, :, None])[..., 0])
    value, s, z = _dual(p, lam, rgb, cn)
    result = s.clone()
    live = torch.arange(len(p), device=p.device)
    for _ in range(iterations):
        gradient = (cn @ s[:, :, None])[..., 0] - rgb  # (n, 3)
        done = gradient.abs().amax(-1) <= tolerance * rgb.amax(-1)
        result[live[done]] = s[done]
        keep = ~done
        if not bool(keep.any()):
            return result
        live, p, rgb, cn, lam, value, s, z, gradient = (
            t[keep] for t in (live, p, rgb, cn, lam, value, s, z, gradient)
        )
        active = (z > 0).to(p.dtype)
        hessian = (cn * active[:, None, :]) @ cn.transpose(1, 2) + 1e-9 * eye  # (n, 3, 3)
        direction = -_solve3(hessian, gradient)
        slope = (gradient * direction).sum(-1)
        step = torch.ones_like(value)
        pending = torch.arange(len(p), device=p.device)
        for _ in range(10):  # backtracking (Armijo), only where the step is still too long
            trial, _, _ = _dual(
                p[pending], lam[pending] + step[pending, None] * direction[pending],
                rgb[pending], cn[pending],
            )  # fmt: skip
            worse = trial > value[pending] + 1e-4 * step[pending] * slope[pending]
            pending = pending[worse]
            if len(pending) == 0:
                break
            step[pending] = step[pending] / 2
        stalled = torch.zeros(len(p), dtype=torch.bool, device=p.device)
        stalled[pending] = True  # no descent found: RGB outside the non-negative gamut
        result[live[stalled]] = s[stalled]
        lam = lam + step[:, None] * direction
        value, s, z = _dual(p, lam, rgb, cn)
        moving = ~stalled
        live, p, rgb, cn, lam, value, s, z = (
            t[moving] for t in (live, p, rgb, cn, lam, value, s, z)
        )
    result[live] = s
    return result


def project_nonnegative(
    spectra: torch.Tensor,
    rgb: torch.Tensor,
    css: torch.Tensor,
    projector: torch.Tensor,
    *,
    alternations: int = 20,
    saturation: float = SATURATION_LEVEL,
) -> torch.Tensor:
    """Project ``spectra`` ``(B, 31, H, W)`` onto the non-negative metamer sets of ``rgb``
    ``(B, 3, H, W)`` for per-image normalised responses ``css`` ``(B, 3, 31)`` with fundamental
    metamer matrices ``projector`` ``(B, 31, 3)`` (zeros: leave that image as is). Saturated
    pixels (a channel >= ``saturation``) are only clipped at 0. Returns float32, >= 0."""
    p = spectra.float()
    if not bool(projector.any()):  # no image has a known camera: only the clip at 0
        return p.clamp_min(0.0)
    unclipped = (rgb < saturation).all(dim=1, keepdim=True) & torch.isfinite(rgb).all(1, True)
    s = p + torch.einsum("blc,bchw->blhw", projector, rgb - torch.einsum("bcl,blhw->bchw", css, p))
    s = torch.where(unclipped, s, p).contiguous()
    if alternations > 1:
        _alternate(s, rgb, css, projector, unclipped[:, 0], alternations - 1)
    s = s.clamp_min(0.0)
    error = (rgb - torch.einsum("bcl,blhw->bchw", css, s)).abs().amax(dim=1)  # (B, H, W)
    todo = (
        (error > NEWTON_TOLERANCE)
        & unclipped[:, 0]
        & (projector.abs().sum((1, 2)) > 0)[:, None, None]
    )
    if not bool(todo.any()):
        return s
    b, yy, xx = torch.nonzero(todo, as_tuple=True)
    cn = css[b].double()  # (N, 3, 31)
    target = rgb[b, :, yy, xx].double()  # (N, 3)
    refined = newton_nonnegative(p[b, :, yy, xx].double(), target, cn)
    refined_error = (torch.einsum("ncl,nl->nc", cn, refined) - target).abs().amax(-1)
    # keep Newton's answer only where it reached the set: outside the gamut its dual diverges
    ceiling = PLAUSIBLE_FACTOR * torch.maximum(p[b, :, yy, xx].amax(-1), target.amax(-1).float())
    better = (
        (refined_error < error[b, yy, xx].double())
        & (refined_error <= ACCEPT_ERROR * target.amax(-1))
        & (refined.amax(-1).float() <= ceiling)
    )
    current = s[b, :, yy, xx]
    s[b, :, yy, xx] = torch.where(better[:, None], refined.float(), current)
    return s


def quantization_cell_target(
    rgb: torch.Tensor,
    rendered: torch.Tensor,
    step: float,
    render_sigma: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Where in the quantisation cell of ``rgb`` the true RGB most likely lies, given a
    reconstruction whose rendering is ``rendered`` (both ``(B, 3, H, W)``).

    An integer input of step ``step`` (input units; 1/255 for 8-bit data scaled to [0, 1])
    only says that the true RGB lies in ``[rgb - step / 2, rgb + step / 2]``. Without
    ``render_sigma`` the target is the cell's point nearest to ``rendered``,
    ``rgb + clamp(rendered - rgb, -step / 2, step / 2)``. With ``render_sigma = (a, b)``
    (in steps) the rendering is taken as a noisy estimate, the true RGB ~ N(rendered, s^2)
    with ``s = (a + b sqrt(level)) * step`` (``level``: the pixel's mean RGB in steps), and
    the target is that normal's mean truncated to the cell (per channel; the posterior mean
    under a uniform quantisation likelihood): the centre where the rendering is unreliable,
    the nearest point where it is precise. Channels at or above :data:`SATURATION_LEVEL`
    keep their value, and none is moved up to it. ``step`` 0 returns ``rgb``."""
    if step <= 0:
        return rgb
    half = 0.5 * float(step)
    if render_sigma is None:
        target = rgb + (rendered - rgb).clamp(-half, half)
    else:
        a, b = render_sigma
        levels = (rgb.mean(dim=1, keepdim=True) / step).clamp_min(0.0)
        sigma = ((a + b * levels.sqrt()) * step).clamp_min(1e-6 * step)
        low, high = (rgb - half - rendered) / sigma, (rgb + half - rendered) / sigma
        shift = sigma * _truncated_normal_mean(low, high)
        target = torch.minimum(torch.maximum(rendered + shift, rgb - half), rgb + half)
    return torch.where((rgb >= SATURATION_LEVEL) | (target >= SATURATION_LEVEL), rgb, target)


def _truncated_normal_mean(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Mean of a standard normal truncated to ``[low, high]``. Where the interval lies in a
    tail, in the form with the scaled complementary error function ``erfcx`` (no
    underflow however far out; Mills' ratio ``Q(t) / pdf(t) = sqrt(pi / 2) erfcx(t /
    sqrt 2)``); every branch stays finite, so gradients through ``torch.where`` do too."""

    def upper_tail(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:  # 0 <= lo < hi
        ratio = torch.exp(-0.5 * (hi - lo) * (hi + lo))  # pdf(hi) / pdf(lo)
        mills = (
            torch.special.erfcx(lo / np.sqrt(2.0)) - torch.special.erfcx(hi / np.sqrt(2.0)) * ratio
        )
        return (1.0 - ratio) / (np.sqrt(np.pi / 2.0) * mills).clamp_min(1e-30)

    mass = (_normal_cdf(high) - _normal_cdf(low)).clamp_min(1e-30)
    inside = (_normal_pdf(low) - _normal_pdf(high)) / mass
    above = upper_tail(low.clamp_min(0.0), high.clamp_min(low.clamp_min(0.0) + 1e-6))
    below = -upper_tail((-high).clamp_min(0.0), (-low).clamp_min((-high).clamp_min(0.0) + 1e-6))
    return torch.where(low > 0, above, torch.where(high < 0, below, inside))


def _normal_pdf(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * t * t) * (1.0 / np.sqrt(2.0 * np.pi))


def _normal_cdf(t: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-t * (1.0 / np.sqrt(2.0)))


def _alternate(
    s: torch.Tensor,
    rgb: torch.Tensor,
    css: torch.Tensor,
    projector: torch.Tensor,
    unclipped: torch.Tensor,
    rounds: int,
) -> None:
    """``rounds`` more rounds of (clip at 0, exact projection) on ``s`` ``(B, 31, H, W)``
    (contiguous), in place, after a first exact projection. Only pixels with a negative value
    after it take part: the others already lie in the non-negative set, where a round changes
    nothing but rounding. So every pixel equals its full alternation up to float rounding
    (8e-7 on the shipped model's output for a 512^2 CAVE scene), at a third of the time
    there (0.73 -> 0.23 s, one thread: a fifth of its pixels need the clip)."""
    bands = s.shape[1]
    for b in range(s.shape[0]):
        spectra = s[b].view(bands, -1)  # (31, H W), a view: updated in place
        negative = ((spectra < 0).any(0) & unclipped[b].flatten()).nonzero()[:, 0]
        if len(negative) == 0:
            continue
        flat = negative[None].expand(bands, -1)
        pixels = spectra.gather(1, flat).clamp_min(0.0)  # (31, n)
        target = rgb[b].reshape(rgb.shape[1], -1).gather(1, flat[: rgb.shape[1]])  # (3, n)
        for index in range(rounds):
            pixels = pixels + projector[b] @ (target - css[b] @ pixels)
            if index < rounds - 1:
                pixels = pixels.clamp_min(0.0)
        spectra.scatter_(1, flat, pixels)


def project_to_metamer_set(
    spectra: np.ndarray, rgb: np.ndarray, css_normalised: np.ndarray
) -> np.ndarray:
    """Numpy form of :func:`project_nonnegative` for one image: spectra ``(31, H, W)``, rgb
    ``(3, H, W)``, response ``(3, 31)`` -> ``(31, H, W)`` float32, >= 0."""
    css = torch.as_tensor(np.asarray(css_normalised, np.float32))[None]
    projector = torch.as_tensor(fundamental_metamer_matrix(css_normalised), dtype=torch.float32)
    out = project_nonnegative(
        torch.as_tensor(np.asarray(spectra, np.float32))[None],
        torch.as_tensor(np.asarray(rgb, np.float32))[None],
        css,
        projector[None],
    )
    return out[0].numpy()


def rerender_error(spectra: np.ndarray, rgb: np.ndarray, css_normalised: np.ndarray) -> np.ndarray:
    """``|Cn s - rgb|`` maximised over channels: ``(H, W)`` float64 (rgb units)."""
    rendered = np.einsum("cl,lhw->chw", np.asarray(css_normalised, np.float64), spectra)
    return np.abs(rendered - np.asarray(rgb, np.float64)).max(axis=0)
