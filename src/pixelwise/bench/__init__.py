"""Benchmarks shipped with the product: ``pixelwise bench <suite>``."""
