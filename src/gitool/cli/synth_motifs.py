"""``gitool synth-motifs``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.console import info, warn


@app.command("synth-motifs")
def synth_motifs_command(
    out: Annotated[
        Path,
        typer.Option("-o", "--out", help="Label store folder to write."),
    ] = Path("motifs"),
    sequences: Annotated[
        int,
        typer.Option("-n", "--sequences", help="Number of sequences (the GLIFAC paper: 100,000)."),
    ] = 100_000,
    length: Annotated[
        int, typer.Option(help="Sequence length in bp (the GLIFAC paper: 200).")
    ] = 200,
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
    min_instances: Annotated[int, typer.Option(help="Fewest motif instances per sequence.")] = 1,
    max_instances: Annotated[int, typer.Option(help="Most motif instances per sequence.")] = 5,
    split_fractions: Annotated[
        str, typer.Option(help="Train,valid,test fractions (the GLIFAC paper: 0.7,0.1,0.2).")
    ] = "0.7,0.1,0.2",
    seed: Annotated[int, typer.Option(help="Seed for sequences, instances and the split.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Generate the GLIFAC paper's synthetic motif-interaction benchmark as a label store.

    Random uniform sequences with 1-5 non-overlapping motif instances each (sampled from the motifs' frequency matrices, either strand, at least 1 bp apart and from the ends), one binary label per motif following the interaction logic, a seeded train/valid/test split, the instance table and the ground-truth interactions. Train a CAN on it with `gitool train --config workflows/can-glifac.yaml --data OUT`, then find the interactions with `gitool interactions`.
    """
    # lazy: keeps `gitool --help` from importing torch
    from gitool.data.labels import LabelStore, check_label_store_output
    from gitool.data.windows import parse_fractions
    from gitool.interpret.motifs import motifs_from_option
    from gitool.interpret.synthetic import (
        DETECTABLE_AUROC,
        detectability,
        generate,
        parse_interactions,
        save_store,
    )

    check_label_store_output(out, force)  # before the sequences are generated
    fractions = parse_fractions(split_fractions)
    data = generate(
        sequences, seed=seed, motifs=motifs_from_option(motifs), length=length,
        min_instances=min_instances, max_instances=max_instances,
        interactions=parse_interactions(interactions),
    )  # fmt: skip
    store = LabelStore(save_store(out, data, fractions=fractions, force=force))
    counts = ", ".join(f"{s} {store.count(s):,}" for s in ("train", "valid", "test"))
    info(
        f"[green]wrote[/] {out}: {sequences:,} sequences of {length} bp ({counts}), "
        f"{len(data.motifs)} motif tasks, {len(data.interactions)} interactions"
    )
    for row in detectability(data).itertuples():
        if row.scan_auroc < DETECTABLE_AUROC:
            warn(
                f"motif {row.motif} ({row.matrix_id}, {row.width} bp, {row.bits:.1f} bits): a "
                f"log-odds scan separates sequences with it from those without at AUROC "
                f"{row.scan_auroc:.3f} only (< {DETECTABLE_AUROC}), so models will hardly "
                "learn it; use a longer, more informative matrix, or drop a similar motif"
            )
