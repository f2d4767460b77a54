"""Figures and run reports: colour-coded prediction maps and a self-contained HTML report."""

from pixelwise.report.colormap import (
    INVALID_FLOW_RGB,
    INVALID_RGB,
    colorize_error,
    colorize_flow,
    colorize_scalar,
    flow_color_wheel,
    flow_wheel_legend,
    save_png,
    to_png_bytes,
)
from pixelwise.report.document import Report, standard_metadata
from pixelwise.report.html import Figure, Section, format_cell, write_report

__all__ = [
    "INVALID_FLOW_RGB",
    "INVALID_RGB",
    "colorize_error",
    "colorize_flow",
    "colorize_scalar",
    "flow_color_wheel",
    "flow_wheel_legend",
    "save_png",
    "to_png_bytes",
    "Figure",
    "Report",
    "standard_metadata",
    "Section",
    "format_cell",
    "write_report",
]
