"""``gitool evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.evaluate import EvaluateOptions as D
from gitool.console import info, stdout_console


@app.command("evaluate")
def evaluate_command(
    model: options.NewestModel = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="Store folder made by `gitool build-dataset`, with the model's window geometry (seq length, bins, bin size) and track count; or, for can-* runs, the label store from `gitool synth-motifs` (per-task AUPR/AUROC). Default: the store the run was trained on (when it was one store).",
        ),
    ] = None,
    split: options.Split = D.split,
    head: Annotated[
        str | None,
        typer.Option(
            help="Model head to evaluate. Default: the head trained on a store with these tracks, else the model's only head."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "batch_size",
                "Windows (default 8) or label-store sequences (default 256) per forward pass.",
            )  # fmt: skip
        ),
    ] = None,
    device: options.Device = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="Per-track TSV to write when it ends in .tsv, else a folder for SPLIT.tsv. Default: RUN/eval/SPLIT.tsv; SPLIT.summary.tsv and the plots go next to it. Existing files are refused unless --force.",
        ),
    ] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(
            help="Another run (or checkpoint) evaluated on the same data and split; repeat for several (Genomic Interpreter Table 1 with every model). Each adds its row to the table and writes its per-track SPLIT.compare.NAME.tsv and the paired per-track Pearson scatter against the run, SPLIT.compare.NAME.png (Genomic Interpreter Fig. 2)."
        ),
    ] = None,
    plot_window: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "plot_window",
                "Also draw predicted vs observed coverage of this window (0-based row of the split's windows.bed) as .window<N>.png (Genomic Interpreter Fig. 3).",
            )  # fmt: skip
        ),
    ] = None,
    plot_tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or indices drawn by --plot-window. Default: the first 8 tracks."
        ),
    ] = None,
    which: options.Which = D.which,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace the tables and PNGs gitool wrote earlier and nobody changed since (listed in .gitool-made.jsonl beside them); never a file of the user's, the run's checkpoints or the store.",
        ),
    ] = D.force,
) -> None:
    """Per-track Pearson, R² and Poisson loss of a trained run on a store split, grouped like Genomic Interpreter Table 1.

    `gitool evaluate` evaluates the newest run under runs/ on the test split of the store it was trained on. Each track's Pearson is over every bin of every window of the split (not per window, not across tracks). The table's columns are mean Pearsons: DNASE/ATAC, CHIP, CAGE, other (RNA and every other group) and OVERALL (all tracks); — marks a group without tracks. Files are written atomically.
    """
    opts = D(
        model=str(model) if model else None, data=str(data) if data else None, split=split,
        head=head, batch_size=batch_size, device=device, out=str(out) if out else None,
        compare=tuple(str(c) for c in compare) if compare else None, plot_window=plot_window,
        plot_tracks=plot_tracks, which=which, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch
    from gitool.evaluate.coverage import evaluate

    result = evaluate(opts)
    stdout_console().print(result.table())
    for path in result.paths.values():
        info(f"[green]wrote[/] {path}")
