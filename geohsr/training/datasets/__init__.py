"""Training data: scene discovery per layout (``--data KIND:PATH``), crops, evaluation pairs."""

from geohsr.training.datasets.registry import DATA_KINDS, load_data_specs, split_scenes
from geohsr.training.datasets.samples import EvalPair, TrainingCrops, evaluation_pairs
from geohsr.training.datasets.scene import Scene, SceneCache, SceneData

__all__ = [
    "DATA_KINDS",
    "EvalPair",
    "Scene",
    "SceneCache",
    "SceneData",
    "TrainingCrops",
    "evaluation_pairs",
    "load_data_specs",
    "split_scenes",
]
