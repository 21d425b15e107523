"""Batch reconstruction of many scenes on a dask.distributed cluster.

``batch_reconstruct(inputs, out_dir, weights=...)`` does the whole job (what
``geohsr batch`` runs); ``run_batch(jobs, cluster, predictor)`` runs planned jobs on a
cluster you created yourself (dask-jobqueue, dask-cuda: see ``examples/``);
``reconstruct_scene_on_cluster(src, dst, cluster=...)`` spreads one scene over a cluster
in independent chunks (``geohsr reconstruct --scheduler/--n-workers``).

Names are imported on first use, so ``import geohsr.batch`` stays light and a missing
``distributed`` package is reported with the command that installs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from geohsr.exceptions import GeoHSRError

#: public name -> module defining it
_EXPORTS = {
    "DEFAULT_RETRIES": "geohsr.batch.cluster",
    "BatchCluster": "geohsr.batch.cluster",
    "ClusterOptions": "geohsr.batch.cluster",
    "local_layout": "geohsr.batch.cluster",
    "open_cluster": "geohsr.batch.cluster",
    "Scene": "geohsr.batch.inputs",
    "SceneJob": "geohsr.batch.inputs",
    "expand_inputs": "geohsr.batch.inputs",
    "output_path": "geohsr.batch.inputs",
    "plan_jobs": "geohsr.batch.inputs",
    "REPORT_FILENAME": "geohsr.batch.report",
    "BatchReport": "geohsr.batch.report",
    "SceneRecord": "geohsr.batch.report",
    "batch_reconstruct": "geohsr.batch.runner",
    "run_batch": "geohsr.batch.runner",
    "ClusterChunks": "geohsr.batch.scene_chunks",
    "reconstruct_scene_on_cluster": "geohsr.batch.scene_chunks",
    "PredictorPlugin": "geohsr.batch.worker",
    "PredictorSettings": "geohsr.batch.worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'geohsr.batch' has no attribute {name!r}")
    try:
        module = importlib.import_module(_EXPORTS[name])
    except ModuleNotFoundError as err:
        if err.name != "distributed":
            raise
        raise GeoHSRError(
            "geohsr batch needs dask.distributed; install it with pip install 'geohsr[distributed]'"
        ) from err
    return getattr(module, name)
