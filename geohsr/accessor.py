"""The ``.hsr`` xarray accessor, registered by ``import geohsr``.

A thin facade over :func:`geohsr.inference.scene.reconstruct_dataarray`::

    import geohsr, rioxarray
    rgb = rioxarray.open_rasterio("scene.tif", chunks=True, masked=True)
    cube = rgb.hsr.reconstruct(model="mxr_unet18_rpr_cave", tile=512, overlap=64)  # lazy
    cube.sel(wavelength=550).plot()

Computing the result gives the same values as ``geohsr reconstruct`` with the same
settings (same windows, same per-pixel order). The graph is one independent task per
output chunk, so it runs on any dask scheduler, ``dask.distributed`` included, when the
model is given by weights name or path: tasks carry that name and the settings, and each
process loads the model once. torch is imported only when ``reconstruct`` runs.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import xarray as xr

from geohsr.exceptions import GeoHSRError, InputError
from geohsr.inference.options import DEFAULT_WEIGHTS, ReconstructOptions

#: a command-line option in a message, with its value when it has one: ``--scale 65535``,
#: ``--bands R,G,B``, ``--stretch 2,98``, ``--warp EPSG:32633``, ``--camera cie1964``
_CLI_OPTION = re.compile(r"--([a-z][a-z0-9-]*)(?: ((?:[A-Za-z0-9_.:+/-]+,)*[A-Za-z0-9_.:+/-]+))?")


def keyword_message(message: str) -> str:
    """``message`` with the command-line options that are :class:`ReconstructOptions`
    keywords written as the accessor takes them: ``--scale 65535`` -> ``scale=65535``,
    ``--bands R,G,B`` -> ``bands=(R, G, B)``, ``--camera cie1964`` -> ``camera='cie1964'``.
    Placeholders in capitals (``DIVISOR``, ``CRS``) stay bare; other options stay as
    they are."""
    keywords = {f.name for f in dataclasses.fields(ReconstructOptions)}

    def keyword(match: re.Match) -> str:
        name, value = match.group(1).replace("-", "_"), match.group(2)
        if name not in keywords:
            return match.group(0)
        if value is None:
            return name
        parts = [_python_value(part) for part in value.split(",")]
        return f"{name}={parts[0]}" if len(parts) == 1 else f"{name}=({', '.join(parts)})"

    return _CLI_OPTION.sub(keyword, message)


def _python_value(text: str) -> str:
    """A value as Python source: numbers and capitalised placeholders bare, else quoted."""
    if re.fullmatch(r"[+-]?\d+(\.\d*)?", text) or re.fullmatch(r"[A-Z][A-Z_]*", text):
        return text
    return repr(text)


def private_copy(model: Any) -> Any:
    """A registry model rebuilt from ``model``'s name, config and state (``copy.deepcopy``
    would share torch's parametrization classes, so folding the copy breaks the original)."""
    from torch.nn.utils import parametrize

    from geohsr.models import create_model
    from geohsr.models.inference_prep import fold_parametrizations

    fresh = create_model(model.geohsr_name, **model.geohsr_config).eval()
    if not any(parametrize.is_parametrized(m) for m in model.modules()):
        fold_parametrizations(fresh)  # the caller's module was already prepared
    fresh.load_state_dict(model.state_dict())
    return fresh


def _predictor(model: Any, options: ReconstructOptions):
    """``(Predictor, tasks' model source)`` from a Predictor, an ``nn.Module`` (source: the
    predictor itself, this process only) or a weights name/path (a picklable spec)."""
    from torch import nn

    from geohsr.inference.model_cache import PredictorSpec, cached_predictor
    from geohsr.inference.predictor import Predictor, resolve_camera

    if isinstance(model, Predictor):
        if options.camera is not None:
            raise InputError(
                "camera= cannot change a ready Predictor; build it with "
                "Predictor(..., camera=...) or pass the weights name/path or module instead"
            )
        return model, None
    settings = {
        "device": options.device,
        "batch_size": options.batch_size,
        "threads": options.threads,
        "backend": options.backend,
        "precision": options.precision,
    }
    if isinstance(model, nn.Module):
        camera = resolve_camera(options.camera) if options.camera else None
        if hasattr(model, "set_camera"):
            model = private_copy(model)  # the camera is state: never change the caller's module
        return Predictor(model, camera=camera, **settings), None
    spec = PredictorSpec.from_options(model, options)
    return cached_predictor(spec), spec


def _reconstruct(data: xr.DataArray, model: Any, kwargs: dict[str, Any]) -> xr.DataArray:
    from geohsr.inference.scene import reconstruct_dataarray

    try:
        options = ReconstructOptions(**kwargs)
        source = str(data.encoding.get("source", data.name or "(in-memory DataArray)"))
        predictor, model_source = _predictor(model, options)
        return reconstruct_dataarray(
            data, predictor=predictor, options=options, source=source, model_source=model_source
        )
    except GeoHSRError as error:  # the library's messages name command-line options
        translated = keyword_message(str(error))
        if translated == str(error):
            raise
        raise type(error)(translated) from error


@xr.register_dataarray_accessor("hsr")
class HsrDataArrayAccessor:
    """``da.hsr``: hyperspectral reconstruction of ``(band, y, x)`` RGB imagery."""

    def __init__(self, data: xr.DataArray) -> None:
        self._data = data

    def reconstruct(self, *, model: Any = DEFAULT_WEIGHTS, **options: Any) -> xr.DataArray:
        """Lazy ``(wavelength, y, x)`` float32 cube with the input's CRS and coordinates.

        model: a weights name/path, an ``nn.Module`` from ``create_model`` or a
            ``Predictor``; only a name or path works on ``dask.distributed`` (a live
            model cannot be sent to workers). options: any :class:`ReconstructOptions`
            field (``tile``, ``overlap``, ``batch_size``, ``device``, ``backend``,
            ``precision``, ``bands``, ``scale``, ``stretch``, ``chunk_size``...).
        """
        return _reconstruct(self._data, model, options)


@xr.register_dataset_accessor("hsr")
class HsrDatasetAccessor:
    """``ds.hsr``: the same for a Dataset (one ``(band, y, x)`` variable, or one 2-D
    variable per band, e.g. ``open_rasterio(..., band_as_variable=True)``)."""

    def __init__(self, dataset: xr.Dataset) -> None:
        self._dataset = dataset

    def rgb(self, variable: str | None = None) -> xr.DataArray:
        """The ``(band, y, x)`` imagery the reconstruction reads."""
        ds = self._dataset
        if variable is not None:
            return ds[variable]
        names = list(ds.data_vars)
        if len(names) == 1 and "band" in ds[names[0]].dims:
            return ds[names[0]]
        if names and all(set(ds[n].dims) == {"y", "x"} for n in names):
            stacked = ds[names].to_dataarray(dim="band")
            stacked.encoding = dict(ds[names[0]].encoding)
            return stacked
        raise InputError(
            f"cannot tell which variables of the Dataset ({', '.join(map(str, names))}) are "
            "the image; pass variable='name' (a (band, y, x) variable)"
        )

    def reconstruct(
        self, *, variable: str | None = None, model: Any = DEFAULT_WEIGHTS, **options: Any
    ) -> xr.Dataset:
        """Dataset with the lazy ``reflectance`` cube (see the DataArray accessor)."""
        cube = _reconstruct(self.rgb(variable), model, options)
        return cube.to_dataset()
