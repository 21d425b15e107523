"""Open rasters in QGIS and print, as JSON, what QGIS shows (run by QGIS's own Python).

Usage: ``QT_QPA_PLATFORM=offscreen /usr/bin/python3 qgis_probe.py URI...``; prints one
JSON object ``{uri: description}``. Needs only ``qgis.core`` (not geohsr, not pytest).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsRasterLayer, QgsRectangle
from qgis.PyQt.QtGui import QColor


def contrast(enhancement: Any) -> list[float] | None:
    """``[min, max]`` of a band's contrast enhancement (``None`` when there is none)."""
    if enhancement is None:
        return None
    return [enhancement.minimumValue(), enhancement.maximumValue()]


def renderer_description(layer: QgsRasterLayer) -> dict[str, Any]:
    """Renderer type, its bands and stretch (multiband colour) or band (grey)."""
    renderer = layer.renderer()
    if renderer is None:
        return {"renderer": None}
    found: dict[str, Any] = {"renderer": renderer.type()}
    if renderer.type() == "multibandcolor":
        found["bands"] = [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
        found["stretch"] = [
            contrast(renderer.redContrastEnhancement()),
            contrast(renderer.greenContrastEnhancement()),
            contrast(renderer.blueContrastEnhancement()),
        ]
    elif renderer.type() == "singlebandgray":
        found["bands"] = [renderer.grayBand()]
    return found


def centre_pixel(layer: QgsRasterLayer) -> QgsRectangle:
    """Extent of the pixel at row ``height // 2``, column ``width // 2``."""
    extent = layer.extent()
    x_step = extent.width() / layer.width()
    y_step = extent.height() / layer.height()
    x = extent.xMinimum() + x_step * (layer.width() // 2)
    y = extent.yMaximum() - y_step * (layer.height() // 2 + 1)
    return QgsRectangle(x, y, x + x_step, y + y_step)


def centre_value(layer: QgsRasterLayer, band: int) -> float | None:
    """The value QGIS reads for ``band`` at the centre pixel (after any scale/offset)."""
    block = layer.dataProvider().block(band, centre_pixel(layer), 1, 1)
    return None if block.isNoData(0, 0) else block.value(0, 0)


def centre_colour(layer: QgsRasterLayer) -> list[int]:
    """``[red, green, blue]`` (0-255) that the layer's renderer draws at the centre pixel."""
    block = layer.renderer().block(1, centre_pixel(layer), 1, 1)
    colour = QColor.fromRgba(block.color(0, 0))
    return [colour.red(), colour.green(), colour.blue()]


def describe(uri: str) -> dict[str, Any]:
    """What QGIS makes of raster ``uri`` opened through GDAL with its default style."""
    layer = QgsRasterLayer(uri, "cube", "gdal")
    if not layer.isValid():
        return {"valid": False, "error": layer.error().summary()}
    provider = layer.dataProvider()
    found: dict[str, Any] = {
        "valid": True,
        "band_count": layer.bandCount(),
        "size": [layer.width(), layer.height()],
        "crs": layer.crs().authid(),
        "colour_interpretation": [
            provider.colorInterpretationName(band) for band in range(1, layer.bandCount() + 1)
        ],
        "scale_offset": [provider.bandScale(1), provider.bandOffset(1)],
        "data_type": int(provider.dataType(1)),
        "source_data_type": int(provider.sourceDataType(1)),
        "centre_band1": centre_value(layer, 1),
        "centre_colour": centre_colour(layer),
    }
    found.update(renderer_description(layer))
    return found


def main(uris: list[str]) -> None:
    """Start QGIS headless, describe each of ``uris``, print the JSON."""
    application = QgsApplication([], False)
    application.initQgis()
    found = {"qgis_version": Qgis.QGIS_VERSION}
    found.update({uri: describe(uri) for uri in uris})
    print(json.dumps(found))
    application.exitQgis()


if __name__ == "__main__":
    main(sys.argv[1:])
