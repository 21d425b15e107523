"""Pure tiling geometry and blending arithmetic: window grids, feather weights, the
band/block processing plan and the streaming weighted-average blend. numpy only: no
torch, no I/O."""

from geohsr.tiling.blend import BlockOutput, Partial, blend_block
from geohsr.tiling.feather import feather_profile, feather_weights
from geohsr.tiling.grid import WindowGrid, axis_starts, make_grid, reflect_pad
from geohsr.tiling.plan import BlendPlan, Span, group_spans, make_plan

__all__ = [
    "BlendPlan",
    "BlockOutput",
    "Partial",
    "Span",
    "WindowGrid",
    "axis_starts",
    "blend_block",
    "feather_profile",
    "feather_weights",
    "group_spans",
    "make_grid",
    "make_plan",
    "reflect_pad",
]
