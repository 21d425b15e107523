"""Raster input (any GDAL raster via rioxarray, lazily) and cube output (Zarr, COG)."""
