"""``gitool modisco``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.modisco import ModiscoOptions as D
from gitool.console import info


@app.command("modisco")
def modisco_command(
    attributions: Annotated[
        Path,
        typer.Argument(
            help="Attribution file (.npz) written by `gitool attribute -o`: hypothetical contributions (N, K, L, 4), the sequences, the tracks and each window's genome position and target span."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Output folder: modisco.h5 (modisco-lite's format: `modisco report` reads it), motifs.tsv, seqlets.tsv, logos/PATTERN.png, report.html, run.json. It appears only when complete. An existing folder is refused unless --force, which replaces only an earlier gitool modisco output (or an empty folder).",
        ),
    ],
    track: Annotated[
        str | None,
        typer.Option(
            help="Track of the attribution file: identifier or 0-based index. Default: its only track (required when it holds several)."
        ),
    ] = D.track,
    window: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "window",
                "Bases per window given to TF-MoDISco, centred on the centre of the window's target span (shifted inwards at the window's ends). Default: the whole target span (the bases whose predictions were attributed; the rest is the model's context).",
            )
        ),
    ] = D.window,
    max_seqlets: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "max_seqlets",
                "Most seqlets TF-MoDISco clusters per metacluster (positive, negative); more finds rarer motifs and takes longer.",
            )
        ),
    ] = D.max_seqlets,
    motifs: Annotated[
        str,
        typer.Option(
            help="Motif database the patterns are matched against with Tomtom: 'builtin' (JASPAR 2024 CORE fungi, 178 matrices, CC BY 4.0) or a MEME or JASPAR motif file (e.g. a JASPAR collection for vertebrates)."
        ),
    ] = D.motifs,
    sliding_window: Annotated[
        int,
        typer.Option(help=ranged(D, "sliding_window", "TF-MoDISco's seqlet core width in bp.")),
    ] = D.sliding_window,
    flank: Annotated[
        int,
        typer.Option(help=ranged(D, "flank", "Bases added on each side of a seqlet's core.")),
    ] = D.flank,
    seqlet_fdr: Annotated[
        float,
        typer.Option(
            help=ranged(
                D,
                "seqlet_fdr",
                "Target false discovery rate of seqlet calling (higher: more, weaker seqlets).",
            )
        ),
    ] = D.seqlet_fdr,
    leiden_runs: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "leiden_runs",
                "Leiden clusterings (seeds 1..n, the best kept); fewer is faster and can merge or split patterns differently. TF-MoDISco is deterministic for a given value.",
            )
        ),
    ] = D.leiden_runs,
    min_metacluster_size: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "min_metacluster_size",
                "TF-MoDISco clusters the positive (negative) seqlets only when there are more than this many.",
            )
        ),
    ] = D.min_metacluster_size,
    final_min_cluster_size: Annotated[
        int,
        typer.Option(
            help=ranged(D, "final_min_cluster_size", "Fewest seqlets a reported pattern has.")
        ),
    ] = D.final_min_cluster_size,
    trim_threshold: Annotated[
        float,
        typer.Option(
            help=ranged(
                D,
                "trim_threshold",
                "Before matching, each pattern is trimmed to where its summed |contribution| reaches this fraction of its peak (as `modisco report` does).",
            )
        ),
    ] = D.trim_threshold,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing output folder, only an earlier gitool modisco output (or an empty folder); never the command's inputs.",
        ),
    ] = D.force,
) -> None:
    """Find the motifs a model learned: TF-MoDISco on `gitool attribute` contributions, each motif matched against JASPAR with Tomtom.

    `gitool modisco attributions.npz -o modisco/` runs TF-MoDISco (modisco-lite) on one track's hypothetical contributions × one-hot sequence, then compares each pattern (trimmed position probability matrix) with every motif of the database with Tomtom (memelite); q-values are Benjamini–Hochberg over the database per pattern, as MEME's Tomtom computes them. motifs.tsv has one row per pattern: name, sign, seqlets, consensus, best match (ID, name, p, q, offset, orientation) and the next two. TF-MoDISco is the slow step (its first run in a fresh install also compiles numba kernels, about a minute).
    """
    options = D(
        attributions=str(attributions), out=str(out), track=track, window=window,
        max_seqlets=max_seqlets, motifs=motifs, sliding_window=sliding_window, flank=flank,
        seqlet_fdr=seqlet_fdr, leiden_runs=leiden_runs,
        min_metacluster_size=min_metacluster_size,
        final_min_cluster_size=final_min_cluster_size, trim_threshold=trim_threshold,
        force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing the attribution libraries
    from gitool.attribution.modisco import SIGNIFICANT_Q, run_modisco

    summary = run_modisco(options)
    info(
        f"[green]TF-MoDISco[/] found {summary.n_patterns} pattern(s) in {summary.n_windows:,} "
        f"windows × {summary.width:,} bp (track {summary.track}) in "
        f"{summary.modisco_seconds:.1f} s; {summary.n_matched} match a motif of "
        f"{summary.database} with q < {SIGNIFICANT_Q}"
    )
    for _, row in summary.table.iterrows():
        info(
            f"  {row['pattern']}: {row['n_seqlets']} seqlets, {row['consensus']} — best "
            f"{row['match_name']} {row['match_id']} (q={row['q_value']:.2g})"
        )
    info(f"[green]wrote[/] {summary.out}/ in {summary.seconds:.1f} s")
