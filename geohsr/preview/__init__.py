"""A picture to check a cube at a glance (``geohsr preview``): the input RGB, the cube
rendered back to RGB through its camera, the per-pixel difference between the two, and the
spectra of a few representative pixels (medoids of spectral clusters, away from edges and
nodata) marked on every image."""

from geohsr.preview.consistency import Consistency, consistency_check, recorded_camera
from geohsr.preview.figure import PREVIEW_SIZE, make_preview, open_cube, render_cube
from geohsr.preview.pixels import pick_pixels

__all__ = [
    "PREVIEW_SIZE",
    "Consistency",
    "consistency_check",
    "make_preview",
    "open_cube",
    "pick_pixels",
    "recorded_camera",
    "render_cube",
]
