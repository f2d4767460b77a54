"""Evaluation measures, each checked against a hand-computed case in the tests."""

from .regression import endpoint_error, mae, rmse

__all__ = ["endpoint_error", "mae", "rmse"]
