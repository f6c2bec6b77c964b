"""``gitool evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.console import info, stdout_console


@app.command("evaluate")
def evaluate_command(
    run: Annotated[
        Path,
        typer.Argument(
            help="Run folder made by `gitool train` (uses its checkpoints/best.pt; see --which) or a checkpoint .pt file."
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="Store folder made by `gitool build-dataset`, with the model's window geometry (seq length, bins, bin size) and track count; or, for can-* runs, the label store from `gitool synth-motifs` (per-task AUPR/AUROC). Default: the store the run was trained on (when it was one store).",
        ),
    ] = None,
    split: options.Split = "test",
    head: Annotated[
        str | None,
        typer.Option(
            help="Model head to evaluate. Default: the head trained on a store with these tracks, else the model's only head."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Windows (default 8) or label-store sequences (default 256) per forward pass."
        ),
    ] = None,
    device: options.Device = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="Per-track TSV to write when it ends in .tsv, else a folder for SPLIT.tsv. Default: RUN/eval/SPLIT.tsv; SPLIT.summary.tsv and the plots go next to it.",
        ),
    ] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(
            help="Another run (or checkpoint) evaluated on the same data and split; repeat for several (Genomic Interpreter Table 1 with every model). Each adds its row to the table and writes its per-track SPLIT.compare.NAME.tsv and the paired per-track Pearson scatter against RUN, SPLIT.compare.NAME.png (Genomic Interpreter Fig. 2)."
        ),
    ] = None,
    plot_window: Annotated[
        int | None,
        typer.Option(
            help="Also draw predicted vs observed coverage of this window (0-based row of the split's windows.bed) as .window<N>.png (Genomic Interpreter Fig. 3)."
        ),
    ] = None,
    plot_tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or indices drawn by --plot-window. Default: the first 8 tracks."
        ),
    ] = None,
    which: options.Which = "best",
) -> None:
    """Per-track Pearson, R² and Poisson loss of a trained run on a store split, grouped like Genomic Interpreter Table 1.

    Each track's Pearson is over every bin of every window of the split (not per window, not across tracks). The table's columns are mean Pearsons: DNASE/ATAC, CHIP, CAGE, other (RNA and every other group) and OVERALL (all tracks); — marks a group without tracks. Files are written atomically.
    """
    # lazy: keeps `gitool --help` from importing torch
    from gitool.evaluate.coverage import evaluate

    result = evaluate(
        run, data, split=split, head=head, batch_size=batch_size, device=device, out=out,
        compare=compare, plot_window=plot_window, which=which,
        plot_tracks=plot_tracks.split(",") if plot_tracks else None,
    )  # fmt: skip
    stdout_console().print(result.table())
    for path in result.paths.values():
        info(f"[green]wrote[/] {path}")
