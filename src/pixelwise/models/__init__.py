"""Whole networks, registered by name: ``create_model("pac_upsampler", factor=8)``.

Importing this package imports every model module, whose ``@register_model`` decorators fill the
registry (the registry itself imports none of them, as in timm).
"""

from . import classical_upsampling, djf, pac_upsampler, pixel_embedding, segmentation, squeezeseg, squeezeseg_ablation  # noqa: F401
from .registry import count_parameters, create_model, list_models, model_task, register_model, suggest

__all__ = ["count_parameters", "create_model", "list_models", "model_task", "register_model", "suggest"]
