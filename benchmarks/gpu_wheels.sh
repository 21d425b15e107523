#!/usr/bin/env bash
# Download, here, the wheels the GPU machine lacks (its image has torch, numpy, xarray, pytest,
# safetensors, click, tqdm, matplotlib, filelock, ... but no GDAL stack, dask or zarr) into
# .whl/ (git-ignored through .git/info/exclude), for Python 3.12 on manylinux x86-64. About
# 41 MB: with the tree (18 MB, the shipped weights included) under the device tool's 64 MiB.
# rasterio 1.4.3 (manylinux2014, 22 MB) rather than 1.4.4 (35 MB) for that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PACKAGES=(rasterio==1.4.3 rioxarray==0.19.0 pyproj==3.7.2 affine==3.0.1 cligj==0.7.2
  click-plugins==1.1.1.2 dask==2026.8.0 partd==1.4.2 locket==1.0.0 zarr==3.1.6
  numcodecs==0.16.6 donfig==0.8.1.post1 pystac==1.15.2 platformdirs==4.14.9 google-crc32c==1.9.0
  # pystac 1.15 is split into a core and one package per extension; it imports them all
  pystac-core==1.15.2 pystac-ext-classification==2.0.1 pystac-ext-datacube==2.2.1 pystac-ext-eo==1.1.1
  pystac-ext-file==2.1.1 pystac-ext-grid==1.1.1 pystac-ext-item-assets==1.0.1 pystac-ext-label==1.0.2
  pystac-ext-mgrs==1.0.1 pystac-ext-mlm==1.4.1 pystac-ext-pointcloud==1.0.1 pystac-ext-projection==2.0.1
  pystac-ext-raster==1.1.1 pystac-ext-render==2.0.0 pystac-ext-sar==1.0.1 pystac-ext-sat==1.0.1
  pystac-ext-scientific==1.0.1 pystac-ext-storage==2.0.1 pystac-ext-table==1.2.1 pystac-ext-timestamps==1.1.1
  pystac-ext-version==1.2.1 pystac-ext-view==1.0.1 pystac-ext-xarray-assets==1.0.1)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d .whl "${PACKAGES[@]}"
du -sh .whl
