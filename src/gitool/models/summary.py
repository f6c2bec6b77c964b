"""The ``gitool models`` table."""

from __future__ import annotations

from rich.table import Table

from gitool.models.registry import list_models, model_summary


def models_table() -> Table:
    """Every model and preset with its parameter count and input/output shapes."""
    table = Table(title="models and presets", title_justify="left")
    for column in ("name", "model", "parameters", "input (bp × 4)", "output", "what"):
        table.add_column(column, justify="right" if column == "parameters" else "left")
    for name in list_models():
        s = model_summary(name)
        table.add_row(name, s.model, f"{s.parameters:,}", s.input, s.output, s.description)
    return table
