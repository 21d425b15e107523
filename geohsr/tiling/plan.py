"""The processing plan: windows grouped into row *bands* and column *blocks*.

The scene is processed band by band (top to bottom) and, inside a band, block by block
(left to right). A block is the set of windows of one band whose column starts fall in
one column group; its predictions are blended and the part of the scene that no later
window touches is finished at once. Memory therefore depends on the tile size and the
scene width times the overlap, never on the scene height.

Grouping rule (both axes): consecutive window starts, ``per_group`` at a time; a last
group made only of the inward-shifted last window (closer than one stride to its
neighbour) joins the group before it. Every group then begins on the regular stride
lattice, and at most the windows of two neighbouring groups overlap any pixel when
``overlap <= tile / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from geohsr.tiling.grid import WindowGrid


@dataclass(frozen=True)
class Span:
    """A group of window starts along one axis.

    ``starts``: window starts in the group; the windows cover ``[begin, end)`` with
    ``begin = starts[0]`` and ``end = starts[-1] + window size``. ``[begin, final_end)``
    is finished once the group is processed (``final_end`` is the next group's ``begin``,
    or the axis length for the last group).
    """

    starts: tuple[int, ...]
    begin: int
    end: int
    final_end: int

    @property
    def size(self) -> int:
        """Pixels covered by the group's windows."""
        return self.end - self.begin

    @property
    def final_size(self) -> int:
        """Pixels finished by the group."""
        return self.final_end - self.begin


def group_spans(
    starts: tuple[int, ...], window: int, length: int, stride: int, per_group: int
) -> tuple[Span, ...]:
    """Group window ``starts`` (each ``window`` long, on an axis of ``length``) into spans."""
    if per_group < 1:
        raise ValueError(f"per_group must be >= 1, got {per_group}")
    groups = [list(starts[i : i + per_group]) for i in range(0, len(starts), per_group)]
    if len(groups) > 1 and len(groups[-1]) == 1 and groups[-1][0] - groups[-2][-1] < stride:
        groups[-2].extend(groups.pop())
    spans = []
    for index, group in enumerate(groups):
        final_end = groups[index + 1][0] if index + 1 < len(groups) else length
        spans.append(Span(tuple(group), group[0], group[-1] + window, final_end))
    return tuple(spans)


@dataclass(frozen=True)
class BlendPlan:
    """Row bands and column blocks of a :class:`WindowGrid`."""

    grid: WindowGrid
    bands: tuple[Span, ...]
    blocks: tuple[Span, ...]

    @property
    def n_blocks(self) -> int:
        return len(self.bands) * len(self.blocks)

    def first_band_touching(self, row: int) -> int:
        """Index of the first band whose windows reach row ``row`` or below.

        Resuming at band ``k`` replays bands ``first_band_touching(bands[k].begin)..k-1``
        to rebuild the partial sums carried into band ``k``.
        """
        return next(i for i, band in enumerate(self.bands) if band.end > row)


def make_plan(grid: WindowGrid, windows_per_block: int) -> BlendPlan:
    """Bands of one window row each and blocks of ``windows_per_block`` window columns."""
    bands = group_spans(grid.row_starts, grid.window_height, grid.height, grid.stride, 1)
    blocks = group_spans(
        grid.col_starts, grid.window_width, grid.width, grid.stride, windows_per_block
    )
    return BlendPlan(grid, bands, blocks)
