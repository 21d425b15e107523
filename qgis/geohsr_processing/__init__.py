"""geohsr Processing provider for QGIS: hyperspectral cubes from RGB rasters, computed by the
user's own ``geohsr`` command line (QGIS's Python never imports geohsr or torch)."""


def classFactory(iface):
    """The plugin instance QGIS asks for."""
    from .plugin import GeohsrPlugin

    return GeohsrPlugin(iface)
