"""The ``gitool`` command line: one module per command, each parsing its options, calling ONE
library function and printing (the work lives in the library; nothing outside ``cli``
imports it). Shared option definitions are in :mod:`gitool.cli.options`.
"""

from gitool.cli import (  # noqa: F401  (importing a command module registers its command)
    attention,
    attribute,
    build_dataset,
    evaluate,
    import_basenji,
    info,
    interactions,
    marginalize,
    models,
    modisco,
    predict,
    quickstart,
    synth_motifs,
    train,
    variants,
)
from gitool.cli.app import GLOBAL_FLAGS, app, main

__all__ = ["GLOBAL_FLAGS", "app", "main"]
