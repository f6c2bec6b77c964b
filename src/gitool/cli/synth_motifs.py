"""``gitool synth-motifs``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.synth_motifs import SynthMotifsOptions as D


@app.command("synth-motifs")
def synth_motifs_command(
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Label store folder to write. An existing one is refused unless --force, which replaces only an earlier label store (or an empty folder).",
        ),
    ] = Path(D.out),
    sequences: Annotated[
        int,
        typer.Option(
            "--sequences",
            "-n",
            help=ranged(D, "sequences", "Number of sequences (the GLIFAC paper: 100,000)."),
        ),
    ] = D.sequences,
    length: Annotated[
        int,
        typer.Option(help=ranged(D, "length", "Sequence length in bp (the GLIFAC paper: 200).")),
    ] = D.length,
    motifs: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated built-in motif names, or a JASPAR/MEME motif file. Default: the 12 JASPAR 2024 motifs of the GLIFAC paper (CEBPB ELF1 ESR1 FOXN3 GATA1 IRF1 NFIB SIX3 SPI1 TAL1 TEAD1 YY1); SP1 is also built in (the authors' code has SP1 where the paper says SPI: --motifs with SP1 for SPI1 and --interactions ...,IRF1/SP1:xor)."
        ),
    ] = None,
    interactions: Annotated[
        str | None,
        typer.Option(
            help="Motif pairs and their logic, e.g. ELF1/SIX3:and,ESR1/FOXN3:xor ('and': both labelled only together; 'xor': each labelled when alone, neither when both present), or 'none'. Default: the GLIFAC paper's ELF1/SIX3:and, TAL1/GATA1:and, ESR1/FOXN3:xor, IRF1/SPI1:xor."
        ),
    ] = None,
    min_instances: Annotated[
        int,
        typer.Option(
            help=ranged(
                D, "min_instances", "Fewest motif instances per sequence (at most --max-instances)."
            )
        ),
    ] = D.min_instances,
    max_instances: Annotated[
        int,
        typer.Option(help=ranged(D, "max_instances", "Most motif instances per sequence.")),
    ] = D.max_instances,
    split_fractions: Annotated[
        str, typer.Option(help="Train,valid,test fractions (the GLIFAC paper: 0.7,0.1,0.2).")
    ] = D.split_fractions,
    seed: Annotated[
        int,
        typer.Option(help=ranged(D, "seed", "Seed for sequences, instances and the split.")),
    ] = D.seed,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace --out if it is an earlier label store (never a folder of other files, nor the --motifs file).",
        ),
    ] = D.force,
) -> None:
    """Generate the GLIFAC paper's synthetic motif-interaction benchmark as a label store.

    Random uniform sequences with 1-5 non-overlapping motif instances each (sampled from the motifs' frequency matrices, either strand, at least 1 bp apart and from the ends), one binary label per motif following the interaction logic, a seeded train/valid/test split, the instance table and the ground-truth interactions. Train a CAN on it with `gitool train --config workflows/can-glifac.yaml --data OUT`, then find the interactions with `gitool interactions`.
    """
    options = D(
        out=str(out), sequences=sequences, length=length, motifs=motifs,
        interactions=interactions, min_instances=min_instances, max_instances=max_instances,
        split_fractions=split_fractions, seed=seed, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch
    from gitool.interpret.synthetic import synth_motifs

    synth_motifs(options)
