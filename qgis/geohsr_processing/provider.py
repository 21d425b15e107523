"""The ``geohsr`` Processing provider: its algorithms, output formats and the 'geohsr
executable' setting (Settings > Options > Processing > Providers > geohsr)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import PreviewAlgorithm, ReconstructAlgorithm, SampleSpectraAlgorithm
from .runner import EXECUTABLE_SETTING, OUTPUT_EXTENSIONS

ICON = Path(__file__).with_name("icon.svg")


class GeohsrProvider(QgsProcessingProvider):
    """Provider id ``geohsr``: ``geohsr:reconstruct``, ``geohsr:preview``,
    ``geohsr:sample_spectra``."""

    def load(self) -> bool:
        """Add the executable setting, then the algorithms."""
        from processing.core.ProcessingConfig import ProcessingConfig, Setting

        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(
            Setting(
                self.name(),
                EXECUTABLE_SETTING,
                "geohsr executable (empty: GEOHSR_EXECUTABLE, else geohsr on PATH)",
                "",
                valuetype=Setting.FILE,
            )
        )
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        from processing.core.ProcessingConfig import ProcessingConfig

        ProcessingConfig.removeSetting(EXECUTABLE_SETTING)

    def loadAlgorithms(self) -> None:
        for algorithm in (ReconstructAlgorithm(), PreviewAlgorithm(), SampleSpectraAlgorithm()):
            self.addAlgorithm(algorithm)

    def id(self) -> str:
        return "geohsr"

    def name(self) -> str:
        return "geohsr"

    def longName(self) -> str:
        return "geohsr: hyperspectral cubes (400-700 nm) from RGB, MXR-U-Nets"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        return str(ICON)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return list(OUTPUT_EXTENSIONS)

    def defaultRasterFileExtension(self) -> str:
        return OUTPUT_EXTENSIONS[0]
