"""Model registry, architectures, baselines and weights I/O."""

from geohsr.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
