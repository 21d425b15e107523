"""The QGIS plugin: registers the geohsr Processing provider (also in ``qgis_process``,
which calls :meth:`GeohsrPlugin.initProcessing`)."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import GeohsrProvider


class GeohsrPlugin:
    """Adds the provider on load and removes it on unload; no GUI of its own."""

    def __init__(self, iface=None) -> None:
        self.iface = iface
        self.provider: GeohsrProvider | None = None

    def initProcessing(self) -> None:
        """Register the provider (once)."""
        if self.provider is None:
            self.provider = GeohsrProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
