"""Training objectives."""

from .regression import masked_mse

__all__ = ["masked_mse"]
