"""``gitool predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.predict import PredictOptions as D
from gitool.console import info


@app.command("predict")
def predict_command(
    regions: Annotated[
        Path,
        typer.Argument(
            help="BED of regions to predict (0-based, half-open; 3+ columns; plain or gzip-compressed). Overlapping or adjacent regions merge; each snaps outwards to the bin grid (multiples of the bin size). A region on a chromosome the genome lacks is an error; one running past its chromosome's end is clipped to it, with a warning."
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "-o",
            "--out",
            help="Output. One track: this bigWig (a .bedgraph name with --bedgraph). Several: OUT.<identifier>.bw (-o out.bw gives out.<identifier>.bw per track), or DIR/<identifier>.bw when it ends with / or is a folder. Files appear only when complete. Existing files are refused unless --force; never written over: the run, genome, regions and the files the run's store was built from.",
        ),
    ],  # str: keep a trailing "/"
    model: options.NewestModel = None,
    genome: options.RecordedGenome = None,
    head: options.Head = None,
    tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or 0-based indices of the head. Default: all."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "batch_size",
                "Model inputs per forward pass (results do not depend on it, beyond float32 rounding). Default: 32 on a CUDA GPU, 8 on the CPU.",
            )
        ),
    ] = None,
    device: options.Device = None,
    rc: Annotated[
        bool,
        typer.Option(
            "--rc",
            help="Also predict the reverse complement and average (bins reversed back, stranded tracks swapped through strand_pair).",
        ),
    ] = False,
    shifts: Annotated[
        str,
        typer.Option(
            help="Comma-separated input shifts in bp, e.g. 0,1,-1, each smaller than the model's bin size: predictions on the shifted inputs are averaged (targets stay put)."
        ),
    ] = D.shifts,
    untransform: Annotated[
        bool,
        typer.Option(
            "--untransform",
            help="Undo the store's soft clip, sqrt and scale per track, giving the bigWigs' units: per-base coverage (a sum track's bin sum divided by the bin size). The hard clip cannot be undone.",
        ),
    ] = False,
    bedgraph: Annotated[
        bool,
        typer.Option(
            "--bedgraph",
            help="Write bedGraph text (chrom start end value per bin) instead of bigWig.",
        ),
    ] = False,
    which: options.Which = D.which,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace the bigWigs (bedGraphs) gitool wrote earlier and nobody changed since (listed in .gitool-made.jsonl beside them); never a file of the user's, never the command's inputs.",
        ),
    ] = D.force,
) -> None:
    """Predict coverage over regions and write one bigWig per track.

    `gitool predict regions.bed -o out.bw` uses the newest run under runs/ and the genome its store was built from, printing both.

    Model windows are tiled so their target spans cover each region (N beyond chromosome ends) and predicted in batches; the bins are stitched and streamed to the files, so memory stays bounded for whole chromosomes. bigWig header: every chromosome of the genome in FASTA order; one entry per bin of the model's bin size, the last bin of a chromosome clipped to its end. Values are in the store's units unless --untransform.
    """
    options = D(
        regions=str(regions), out=out, model=str(model) if model else None,
        genome=str(genome) if genome else None, head=head, tracks=tracks,
        batch_size=batch_size, device=device, rc=rc, shifts=shifts, untransform=untransform,
        bedgraph=bedgraph, which=which, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch
    from gitool.predict.inference import predict

    summary = predict(options)
    info(
        f"[green]predicted[/] {summary.bp:,} bp in {summary.n_regions:,} region(s) "
        f"({summary.n_windows:,} windows, head {summary.head}) in {summary.seconds:.1f} s"
    )
    for path in summary.paths:
        info(f"[green]wrote[/] {path}")
