"""``gitool marginalize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.marginalize import MarginalizeOptions as D
from gitool.console import info

MOTIF_HELP = (
    "a DNA sequence (A, C, G, T; other IUPAC codes become their first base in A, C, G, T "
    "order, with a warning; N keeps the background's base), a built-in motif name (CEBPB, "
    "ELF1, ESR1, FOXN3, GATA1, IRF1, NFIB, SIX3, SPI1, SP1, TAL1, TEAD1, YY1) or a "
    "JASPAR/MEME file holding one motif; a matrix is inserted as its consensus (most likely "
    "base per position)."
)


@app.command("marginalize")
def marginalize_command(
    motif: Annotated[
        str,
        typer.Option(
            "--motif",
            help="Motif to insert, centred on the middle target bin (the status line says where): "
            + MOTIF_HELP,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Output TSV: one row per track (and per spacing × orientation of a pair). "
            "Beside it OUT-stem.png (the plot) and OUT-stem.npz (per-background values). "
            "Existing files are refused unless --force; inputs are never written over.",
        ),
    ],
    motif2: Annotated[
        str | None,
        typer.Option(
            "--motif2",
            help="Second motif, inserted --spacings bp after the end of the first (same "
            "forms as --motif). Each arrangement is also predicted with either motif alone, "
            "which gives the interaction (pair minus each alone plus background). Default: "
            "a single motif.",
        ),
    ] = None,
    spacings: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated spacings in bp between the end of motif 1 and the start of "
            "motif 2 (0 or more; to put motif 2 upstream, swap --motif and --motif2). "
            "Default with --motif2: 0,5,10,20,50."
        ),
    ] = None,
    orientations: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated orientations: + forward, - reverse complement; two signs "
            "for a pair (motif 1 then motif 2). Default: ++,+-,-+,-- for a pair, + for a "
            "single motif (+,- tries both strands)."
        ),
    ] = None,
    n_backgrounds: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "n_backgrounds",
                "Background sequences: random N-free genome windows of the model's input "
                "length, each dinucleotide-shuffled (tangermeme). More gives smaller "
                "standard errors.",
            )
        ),
    ] = D.n_backgrounds,
    seed: Annotated[
        int,
        typer.Option(
            help=ranged(
                D, "seed", "Seed of the windows drawn and their shuffles (same seed, same result)."
            )
        ),
    ] = D.seed,
    model: options.NewestModel = None,
    genome: Annotated[
        Path | None,
        typer.Option(
            "--genome",
            "-g",
            help="Genome FASTA (plain or bgzip) the backgrounds are drawn from. Default: the "
            "genome the run's store was built from (recorded in its manifest).",
        ),
    ] = None,
    head: options.Head = None,
    tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or 0-based indices of the head. Default: "
            "all (the plot shows the first 6)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "batch_size",
                "Model inputs per forward pass (results do not depend on it, beyond float32 rounding). Default: 32 on "
                "a CUDA GPU, 8 on the CPU.",
            )
        ),
    ] = None,
    device: options.Device = None,
    which: options.Which = D.which,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace the TSV, PNG and npz gitool wrote earlier and nobody changed since "
            "(listed in .gitool-made.jsonl beside them); never a file of the user's, never the "
            "command's inputs.",
        ),
    ] = D.force,
) -> None:
    """Insert a motif (or a pair at several spacings and orientations) into shuffled genome
    backgrounds and report the predicted change per track.

    `gitool marginalize --motif GATA1 -o gata.tsv` uses the newest run under runs/ and the genome its store was built from.

    The causal test of what attention suggests: the change (with the motif(s) minus without) at the bin holding motif 1's centre and summed over all bins, averaged over --n-backgrounds shuffled windows with its standard error. With --motif2 the PNG plots the change against spacing, one line per orientation (dashed: the sum of each motif alone); with one motif, the change across the target window.
    """
    options = D(
        motif=motif, out=str(out), motif2=motif2, spacings=spacings, orientations=orientations,
        n_backgrounds=n_backgrounds, seed=seed, model=str(model) if model else None,
        genome=str(genome) if genome else None, head=head, tracks=tracks,
        batch_size=batch_size, device=device, which=which, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch
    from gitool.attribution.marginalize import marginalize

    summary = marginalize(options)
    n_rows = len(summary.table)
    info(
        f"[green]marginalized[/] {summary.n_backgrounds:,} shuffled backgrounds × "
        f"{summary.n_inputs // summary.n_backgrounds} inputs each (head {summary.head}, "
        f"{n_rows:,} rows) in {summary.seconds:.1f} s; {summary.strongest()}"
    )
    for path in summary.paths:
        info(f"[green]wrote[/] {path}")
