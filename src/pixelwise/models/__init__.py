"""Whole networks, registered by name: ``create_model("pac_upsampler", factor=8)``."""

from .registry import count_parameters, create_model, list_models, register_model

__all__ = ["count_parameters", "create_model", "list_models", "register_model"]
