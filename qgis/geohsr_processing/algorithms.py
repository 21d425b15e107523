"""The Processing algorithms: thin QGIS wrappers that read parameters, build the geohsr
command line (:mod:`.runner`), run it with the dialog's progress and cancel, and load the
results."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QVariant

from . import help_texts
from .runner import (
    DEFAULT_DEVICE,
    DEFAULT_PREVIEW_COUNT,
    DEFAULT_TILE,
    DEFAULT_WEIGHTS,
    EXECUTABLE_SETTING,
    INPUT_ENCODINGS,
    OUTPUT_DTYPES,
    SPECTRUM_FIELDS,
    Canceled,
    GeohsrError,
    ReconstructRequest,
    cube_path,
    find_executable,
    preview_command,
    read_spectra_csv,
    reconstruct_command,
    remove_partials,
    run_geohsr,
    sample_command,
    write_points_csv,
    zarr_layer_source,
)

GROUP = "Hyperspectral reconstruction"


def executable_setting() -> str | None:
    """The 'geohsr executable' Processing setting (``None`` outside a Processing session)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return None
    return ProcessingConfig.getSetting(EXECUTABLE_SETTING)


def run_command(command: list[str], feedback: QgsProcessingFeedback) -> None:
    """Run geohsr with the dialog's progress bar, log and Cancel button; its errors become
    :class:`QgsProcessingException`."""
    feedback.pushCommandInfo(" ".join(shlex.quote(part) for part in command))

    def message(line: str) -> None:
        if line.startswith("note:"):
            feedback.pushWarning(line)
        else:
            feedback.pushConsoleInfo(line)

    try:
        run_geohsr(
            command,
            on_progress=feedback.setProgress,
            on_message=message,
            is_canceled=feedback.isCanceled,
        )
    except GeohsrError as err:
        raise QgsProcessingException(str(err)) from err


def executable() -> str:
    """The geohsr executable, or :class:`QgsProcessingException` saying how to set it."""
    try:
        return find_executable(executable_setting())
    except GeohsrError as err:
        raise QgsProcessingException(str(err)) from err


def raster_source(alg: QgsProcessingAlgorithm, parameters, name: str, context) -> str | None:
    """The file behind a raster parameter: the layer's source (``ZARR:"x.zarr":/...`` ->
    ``x.zarr``), else the text given."""
    layer = alg.parameterAsRasterLayer(parameters, name, context)
    if layer is not None:
        return cube_path(layer.source())
    text = alg.parameterAsString(parameters, name, context)
    return cube_path(text) if text else None


def optional_value(parameters: dict[str, Any], name: str) -> bool:
    """Whether an optional parameter was given (not missing, empty or NULL)."""
    value = parameters.get(name)
    if value is None or value == "":
        return False
    return not (hasattr(value, "isNull") and value.isNull())


class StyleLoader(QgsProcessingLayerPostProcessorInterface):
    """Applies the cube's ``.qml`` true-colour style when Processing loads the result."""

    #: QGIS keeps a plain pointer to post-processors: keep them alive here
    alive: list[StyleLoader] = []

    def __init__(self, qml: Path) -> None:
        super().__init__()
        self.qml = qml

    @classmethod
    def create(cls, qml: Path) -> StyleLoader:
        loader = cls(qml)
        cls.alive.append(loader)
        return loader

    def postProcessLayer(self, layer, context, feedback) -> None:
        if layer is None or not self.qml.is_file():
            return
        message, ok = layer.loadNamedStyle(str(self.qml))
        if not ok:
            feedback.reportError(f"could not apply {self.qml}: {message}", False)
        layer.triggerRepaint()


class GeohsrAlgorithm(QgsProcessingAlgorithm):
    """Common parts: group, help, instance creation."""

    HELP = ""

    def createInstance(self):
        return type(self)()

    def group(self) -> str:
        return GROUP

    def groupId(self) -> str:
        return "hyperspectral"

    def shortHelpString(self) -> str:
        return self.HELP


class ReconstructAlgorithm(GeohsrAlgorithm):
    """``geohsr:reconstruct``: RGB raster -> 31-band cube."""

    HELP = help_texts.RECONSTRUCT

    def name(self) -> str:
        return "reconstruct"

    def displayName(self) -> str:
        return "Reconstruct hyperspectral cube (31 bands, 400-700 nm)"

    def initAlgorithm(self, config=None) -> None:
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "RGB raster"))
        self.addParameter(
            QgsProcessingParameterString(
                "BANDS", "Red,green,blue band numbers (e.g. 4,3,2)", optional=True
            )
        )
        self.addParameter(
            number("SCALE", "Scale: divide raw values by", number.Double, optional=True)
        )
        self.addParameter(
            QgsProcessingParameterString(
                "STRETCH", "Percentile stretch low,high instead of scale (e.g. 2,98)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "INPUT_ENCODING",
                "Input encoding",
                options=list(INPUT_ENCODINGS),
                defaultValue=INPUT_ENCODINGS[0],
                usesStaticStrings=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "CAMERA", "Camera (cie1964, a camera name or a CSV; empty: unknown)", optional=True
            )
        )
        advanced = [
            QgsProcessingParameterString(
                "WEIGHTS", "Weights (shipped name or .safetensors)", DEFAULT_WEIGHTS
            ),
            number("TILE", "Window size (pixels)", number.Integer, DEFAULT_TILE, minValue=16),
            number(
                "OVERLAP",
                "Window overlap (pixels; empty: tile/4, at most 64)",
                number.Integer,
                optional=True,
                minValue=0,
            ),
            QgsProcessingParameterString(
                "DEVICE", "Device (auto, cpu, cuda or cuda:N)", DEFAULT_DEVICE
            ),
            QgsProcessingParameterEnum(
                "DTYPE",
                "Output data type",
                options=list(OUTPUT_DTYPES),
                defaultValue=OUTPUT_DTYPES[0],
                usesStaticStrings=True,
            ),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(
            QgsProcessingParameterRasterDestination("OUTPUT", "Hyperspectral cube (.tif or .zarr)")
        )

    def request(self, parameters, context) -> ReconstructRequest:
        """The parameters as a :class:`ReconstructRequest`."""
        source = raster_source(self, parameters, "INPUT", context)
        if not source:
            raise QgsProcessingException(self.invalidRasterError(parameters, "INPUT"))
        text = self.parameterAsString
        return ReconstructRequest(
            input=source,
            output=self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            bands=text(parameters, "BANDS", context) or None,
            scale=self.parameterAsDouble(parameters, "SCALE", context)
            if optional_value(parameters, "SCALE")
            else None,
            stretch=text(parameters, "STRETCH", context) or None,
            camera=text(parameters, "CAMERA", context) or None,
            weights=text(parameters, "WEIGHTS", context) or DEFAULT_WEIGHTS,
            tile=self.parameterAsInt(parameters, "TILE", context),
            overlap=self.parameterAsInt(parameters, "OVERLAP", context)
            if optional_value(parameters, "OVERLAP")
            else None,
            device=text(parameters, "DEVICE", context) or DEFAULT_DEVICE,
            dtype=self.parameterAsEnumString(parameters, "DTYPE", context),
            input_encoding=self.parameterAsEnumString(parameters, "INPUT_ENCODING", context),
        )

    def processAlgorithm(self, parameters, context, feedback):
        request = self.request(parameters, context)
        try:
            command = reconstruct_command(executable(), request)
        except GeohsrError as err:
            raise QgsProcessingException(str(err)) from err
        try:
            run_command(command, feedback)
        except Canceled:
            for path in remove_partials(request.output):
                feedback.pushInfo(f"removed the unfinished {path}")
            raise QgsProcessingException("cancelled: no cube was written") from None
        self.load_with_style(request.output, context, feedback)
        return {"OUTPUT": request.output}

    @staticmethod
    def load_with_style(
        output: str, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        """Load a Zarr cube through GDAL's ``ZARR:`` source (or not at all where GDAL cannot
        open it as one raster), and apply the ``.qml`` style."""
        key = output
        if output.lower().endswith(".zarr") and context.willLoadLayerOnCompletion(output):
            layers = context.layersToLoadOnCompletion()
            details = layers.pop(output)
            key = zarr_layer_source(output)
            if QgsRasterLayer(key, "cube", "gdal").bandCount() == len(SPECTRUM_FIELDS):
                layers[key] = details
            else:
                feedback.pushWarning(
                    f"the cube is written, but this QGIS's GDAL cannot open {key} as one "
                    "31-band raster (GDAL 3.8 or newer can); write .tif to view it in QGIS"
                )
            context.setLayersToLoadOnCompletion(layers)
        if context.willLoadLayerOnCompletion(key):
            qml = Path(output).with_suffix(".qml")
            context.layerToLoadOnCompletionDetails(key).setPostProcessor(StyleLoader.create(qml))


class PreviewAlgorithm(GeohsrAlgorithm):
    """``geohsr:preview``: a cube (and optionally its RGB) -> a PNG."""

    HELP = help_texts.PREVIEW

    def name(self) -> str:
        return "preview"

    def displayName(self) -> str:
        return "Preview hyperspectral cube (PNG)"

    def initAlgorithm(self, config=None) -> None:
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterRasterLayer("CUBE", "Hyperspectral cube"))
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                "RGB", "RGB raster the cube was made from", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "PIXELS", "Pixels to plot, x,y;x,y (column,row; empty: automatic)", optional=True
            )
        )
        self.addParameter(
            number(
                "COUNT",
                "Representative pixels (when no pixels are given)",
                number.Integer,
                DEFAULT_PREVIEW_COUNT,
                minValue=1,
                maxValue=10,
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination("OUTPUT", "Preview", "PNG files (*.png)")
        )

    def processAlgorithm(self, parameters, context, feedback):
        cube = raster_source(self, parameters, "CUBE", context)
        if not cube:
            raise QgsProcessingException(self.invalidRasterError(parameters, "CUBE"))
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        try:
            command = preview_command(
                executable(),
                cube,
                output,
                rgb=raster_source(self, parameters, "RGB", context),
                pixels=self.parameterAsString(parameters, "PIXELS", context),
                count=self.parameterAsInt(parameters, "COUNT", context),
            )
            run_command(command, feedback)
        except GeohsrError as err:
            raise QgsProcessingException(str(err)) from err
        except Canceled:
            raise QgsProcessingException("cancelled") from None
        return {"OUTPUT": output}


class SampleSpectraAlgorithm(GeohsrAlgorithm):
    """``geohsr:sample_spectra``: a cube and a point layer -> a table of spectra."""

    HELP = help_texts.SAMPLE

    def name(self) -> str:
        return "sample_spectra"

    def displayName(self) -> str:
        return "Sample spectra at points"

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("CUBE", "Hyperspectral cube"))
        self.addParameter(
            QgsProcessingParameterFeatureSource("POINTS", "Points", [QgsProcessing.TypeVectorPoint])
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink("OUTPUT", "Spectra", QgsProcessing.TypeVectorPoint)
        )

    def processAlgorithm(self, parameters, context, feedback):
        cube = raster_source(self, parameters, "CUBE", context)
        if not cube:
            raise QgsProcessingException(self.invalidRasterError(parameters, "CUBE"))
        source = self.parameterAsSource(parameters, "POINTS", context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, "POINTS"))
        features = list(source.getFeatures())
        folder = Path(tempfile.mkdtemp(dir=QgsProcessingUtils.tempFolder()))
        points_csv, spectra_csv = folder / "points.csv", folder / "spectra.csv"
        write_points_csv(point_rows(features), str(points_csv))
        try:
            command = sample_command(
                executable(), cube, str(points_csv), str(spectra_csv), crs_text(source)
            )
            run_command(command, feedback)
        except GeohsrError as err:
            raise QgsProcessingException(str(err)) from err
        except Canceled:
            raise QgsProcessingException("cancelled") from None
        spectra = read_spectra_csv(str(spectra_csv))
        fields = QgsFields(source.fields())
        for name in SPECTRUM_FIELDS:
            if fields.indexOf(name) >= 0:
                raise QgsProcessingException(f"POINTS already has a field {name}: rename it")
            fields.append(QgsField(name, QVariant.Double))
        sink, dest_id = self.parameterAsSink(
            parameters, "OUTPUT", context, fields, source.wkbType(), source.sourceCrs()
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, "OUTPUT"))
        for fid, feature in enumerate(features):
            out = QgsFeature(fields)
            out.setGeometry(feature.geometry())
            out.setAttributes(list(feature.attributes()) + spectra.get(fid, [None] * 31))
            sink.addFeature(out, QgsFeatureSink.FastInsert)
        return {"OUTPUT": dest_id}


def point_rows(features: list[QgsFeature]) -> list[tuple[int, float | None, float | None]]:
    """``(index, x, y)`` of each feature's (first) point; ``None`` without geometry."""
    rows: list[tuple[int, float | None, float | None]] = []
    for fid, feature in enumerate(features):
        geometry = feature.geometry()
        if geometry.isNull() or geometry.isEmpty():
            rows.append((fid, None, None))
            continue
        point = geometry.vertexAt(0)
        rows.append((fid, point.x(), point.y()))
    return rows


def crs_text(source) -> str:
    """The points' CRS for ``geohsr sample --crs``: an EPSG/ESRI code, else WKT ("" when
    the layer has none)."""
    crs = source.sourceCrs()
    if not crs.isValid():
        return ""
    authid = crs.authid()
    if authid.upper().startswith(("EPSG:", "ESRI:")):
        return authid
    return crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED)
