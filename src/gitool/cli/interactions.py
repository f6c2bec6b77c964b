"""``gitool interactions``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gitool.cli import options
from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.interactions import InteractionsOptions as D
from gitool.console import info, stdout_console


@app.command("interactions")
def interactions_command(
    model: options.Model,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="The store the model was trained on: a label store from `gitool synth-motifs` (can), or a build-dataset store (swin, enformer). Default: the run's own training store (when it was one store).",
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Output folder (maps as TSV and PNG, scores). An existing one is refused unless --force, which replaces only an earlier output of this command (or an empty folder); never an input.",
        ),
    ] = Path(D.out),
    split: options.Split = D.split,
    threshold: Annotated[
        list[float] | None,
        typer.Option(
            help=ranged(
                D,
                "threshold",
                "Attention threshold above which a position pair counts as attended (default 0.1, as in the GLIFAC paper). Repeat for a sweep, e.g. --threshold 0.1 --threshold 0.3; all thresholds come from one pass. Pick one well above even attention (1 / tokens: 0.02 for can pool 4, 0.1 for pool 20); a warning says when a threshold passes most pairs.",
            )  # fmt: skip
        ),
    ] = None,
    layer: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "layer",
                "Attention layer whose input channels are the 'filters' (Genomic Interpreter numbering, as in `gitool attention`). Default: the model's last attention layer; can models have layer 1 only, and use their first convolution's filters.",
            )  # fmt: skip
        ),
    ] = None,
    motifs: Annotated[
        str | None,
        typer.Option(
            help="Motifs to label CAN filters with: comma-separated built-in names or a JASPAR/MEME file. Default: the store's motifs.jaspar, else the 12 built-in motifs."
        ),
    ] = None,
    min_similarity: Annotated[
        float,
        typer.Option(
            help=ranged(
                D,
                "min_similarity",
                "A filter takes its best-matching motif's label when their similarity (cosine of the centred PPMs over the motif) reaches this. Against the 12 built-in motifs, 1.7 % of untrained filters reach 0.7 and 0.1 % reach 0.75 (median 0.53); trained motif detectors score 0.8-1.",
            )  # fmt: skip
        ),
    ] = D.min_similarity,
    sequences: Annotated[
        int | None,
        typer.Option(help=ranged(D, "sequences", "Use only the first N sequences of the split.")),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "batch_size",
                "Sequences per forward pass (default 256 for can, 8 for swin/enformer).",
            )  # fmt: skip
        ),
    ] = None,
    device: options.Device = None,
    seed: Annotated[
        int, typer.Option(help=ranged(D, "seed", "Seed of the random position pairs."))
    ] = D.seed,
    random_pairs: Annotated[
        str,
        typer.Option(
            help="GLIFAC's equal number of random position pairs: sample (drawn uniformly with --seed, as in the GLIFAC paper), distance (one per attended pair at the same distance, anywhere in the sequence: windowed attention only pairs near tokens, so uniform pairs would make the map partly measure proximity), expected (the expectation of sample: no sampling noise), none (attended pairs only, an ablation), or auto: sample for can models, distance for swin and enformer."
        ),
    ] = D.random_pairs,
    plot: Annotated[
        bool, typer.Option("--plot/--no-plot", help="Write the heatmap PNGs.")
    ] = D.plot,
    which: options.Which = D.which,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace --out if it is an earlier output of this command."),
    ] = D.force,
) -> None:
    """Find motif interactions from attention: GLIFAC and the local-attention baseline of the GLIFAC paper.

    GLIFAC: attention maxed over heads; position pairs with attention >= --threshold (self-pairs removed) plus as many random pairs; the Pearson correlation of every filter's activation at the first position with every filter's at the second, across all pairs of the split; symmetrised keeping the larger magnitude. The local baseline (SATORI) counts the pairs of filters active (above half their maximum) at the two attended positions. CAN filters are labelled by their best-matching motif (their position probability matrix from sites above half their maximum, compared with the motifs), giving motif x motif maps; on a `gitool synth-motifs` store they are scored against the ground truth by AUROC, AUPR and SNR, over the 66 motif pairs (each its strongest filter pair) and over all pairs of differently labelled filters (the authors' unit). Writes filters.tsv/.meme, the filter and motif maps per threshold as TSV and PNG, and scores.tsv.
    """
    options = D(
        model=str(model), data=str(data) if data else None, out=str(out), split=split,
        threshold=tuple(threshold or D.threshold), layer=layer, motifs=motifs, min_similarity=min_similarity,
        sequences=sequences, batch_size=batch_size, device=device, seed=seed,
        random_pairs=random_pairs, plot=plot, which=which, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch
    from gitool.interpret.interactions import interactions_from_run

    result = interactions_from_run(options)
    labelled = result.filters.get("motif")
    if labelled is not None:
        found = sorted({m for m in labelled if m})
        info(
            f"{(labelled != '').sum()} of {len(labelled)} filters match a motif "
            f"({', '.join(found) or 'none'})"
        )
    if result.scores is not None:
        stdout_console().print(_scores_table(result.scores))
    info(f"[green]wrote[/] {result.out}")


def _scores_table(scores) -> Table:
    """``scores.tsv`` as the table the command prints."""
    table = Table(title="Motif interactions vs the ground truth")
    left = ("method", "scored", "scoring")
    for column in ("method", "scored", "scoring", "threshold", "AUROC", "AUPR", "SNR", "pairs"):
        table.add_column(column, justify="left" if column in left else "right")
    for row in scores.itertuples():
        table.add_row(
            row.method, f"{row.level} pairs", row.scoring, f"{row.threshold:g}",
            f"{row.auroc:.3f}", f"{row.aupr:.3f}", f"{row.snr:.2f}", f"{row.pairs:,}",
        )  # fmt: skip
    return table
