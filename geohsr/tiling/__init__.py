"""Pure tiling geometry and blending arithmetic: window grids, feather weights, the
band/block processing plan, the streaming weighted-average blend and independent output
chunks. numpy only: no torch, no I/O."""

from geohsr.tiling.blend import BlockOutput, Partial, blend_block
from geohsr.tiling.chunks import Chunk, chunk_plan, halo, make_chunks, redundancy
from geohsr.tiling.feather import feather_profile, feather_weights
from geohsr.tiling.grid import WindowGrid, axis_starts, make_grid, reflect_pad
from geohsr.tiling.plan import BlendPlan, Span, group_spans, make_plan

__all__ = [
    "BlendPlan",
    "BlockOutput",
    "Chunk",
    "Partial",
    "Span",
    "WindowGrid",
    "axis_starts",
    "blend_block",
    "chunk_plan",
    "feather_profile",
    "feather_weights",
    "group_spans",
    "halo",
    "make_chunks",
    "make_grid",
    "make_plan",
    "redundancy",
    "reflect_pad",
]
