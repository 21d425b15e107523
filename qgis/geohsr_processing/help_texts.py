"""Help texts of the algorithms (HTML, as the Processing dialog shows them). No imports."""

from __future__ import annotations

CITATION = (
    "<p><b>Model.</b> The MXR-U-Net family of A. Palrecha and A. Banerjee, <i>MXR-U-Nets for "
    "Real Time Hyperspectral Reconstruction</i> (Pixxel, 2020); the shipped "
    "weights <code>mxr_unet18_rpr_cave</code> add an exposure-equivariant, camera-aware "
    "root-polynomial base (see geohsr's README and the weights' model card). Please cite "
    "the paper when you publish results.</p>"
)

RADIOMETRY = (
    "<p><b>What the numbers mean.</b> 31 bands, 400-700 nm in 10 nm steps (band 1 = 400 nm, "
    "band 31 = 700 nm). The cube is in the <b>radiometric scale of the input</b>: rendered "
    "back through the camera response (normalised so that a flat reflectance-1 spectrum "
    "gives RGB 1, 1, 1) it reproduces the input RGB after SCALE / STRETCH. So for "
    "reflectance-calibrated RGB (surface-reflectance bands scaled to 0-1 with SCALE, e.g. "
    "10000 for reflectance x 10000 products) the cube is <b>reflectance</b>; for a camera "
    "image it is reflectance x the exposure (a white reflector that reads 0.6 gives "
    "spectra at 0.6 x reflectance). A percentile STRETCH changes the scale: avoid it when "
    "you want absolute values. Masked / nodata pixels are NaN (65535 in uint16 output, "
    "which stores the value x 10000). The cube records this in its "
    "<code>radiometric_convention</code>, <code>camera</code> and "
    "<code>input_encoding</code> metadata.</p>"
)

EXECUTABLE = (
    "<p><b>Runs geohsr.</b> The algorithm runs the <code>geohsr</code> command line of your "
    "own Python environment (QGIS's Python never loads torch). Set its path in Settings &gt; "
    "Options &gt; Processing &gt; Providers &gt; geohsr &gt; <i>geohsr executable</i>, or "
    "the <code>GEOHSR_EXECUTABLE</code> environment variable, or put it on PATH.</p>"
)

RECONSTRUCT = (
    "<p>Reconstructs a 31-band hyperspectral cube (400-700 nm) from an RGB raster, keeping "
    "its CRS and pixel grid. OUTPUT ends in <code>.tif</code> (Cloud-Optimised GeoTIFF, "
    "loaded with a true-colour style from bands 25, 16, 7 = 640, 550, 460 nm) or "
    '<code>.zarr</code> (opened as <code>ZARR:"cube.zarr":/reflectance</code>, GDAL 3.8 '
    "or newer). Beside it geohsr writes a STAC Item (<code>.json</code>) and the QGIS style "
    "(<code>.qml</code>).</p>"
    "<p><b>BANDS</b>: 1-based red,green,blue bands (e.g. 4,3,2), empty to use the bands "
    "labelled red/green/blue or the first three. <b>SCALE</b>: divide raw values by this "
    "(needed for 16-bit / float input without scale tags, e.g. 10000 or 65535; 8-bit is "
    "divided by 255). <b>STRETCH</b>: percentile stretch low,high (e.g. 2,98) instead of "
    "SCALE. <b>CAMERA</b>: the input's camera if known (cie1964, a camera name, or a CSV "
    "wavelength,r,g,b): the spectra then render back exactly to the input RGB. "
    "<b>INPUT_ENCODING</b>: linear for radiometric / reflectance bands, srgb for camera "
    "JPEGs, most drone orthomosaics and 'true colour' products.</p>"
    "<p>Cancel stops geohsr; no output file appears (it is written to OUTPUT.partial and "
    "renamed only when complete and checked). A Cancel that comes as the checked cube is "
    "being renamed waits for it: the run then ends complete.</p>"
    + RADIOMETRY
    + EXECUTABLE
    + CITATION
)

PREVIEW = (
    "<p>A PNG to check a cube at a glance: the input RGB (when given), the cube rendered "
    "back to RGB, their difference |input - rendered cube| in input units, and the spectra "
    "at a few pixels (PIXELS as x,y;x,y in column,row, or COUNT representative pixels "
    "picked by spectral clustering).</p>" + RADIOMETRY + EXECUTABLE + CITATION
)

SAMPLE = (
    "<p>The cube's spectrum at each point of a point layer: a layer with the points' "
    "fields and one field per wavelength, <code>nm_400</code> ... <code>nm_700</code> "
    "(empty outside the cube or at nodata), to chart or classify. Points are reprojected "
    "to the cube's CRS; a multipoint feature is sampled at its first point.</p>"
    + RADIOMETRY
    + EXECUTABLE
    + CITATION
)
