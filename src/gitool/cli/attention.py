"""``gitool attention``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.console import info, progress


@app.command("attention")
def attention_command(
    model: options.NewestModel = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="A folder (index.json + one window_NNNNNN.npz per window) or a file ending in .npz (one archive, index beside it as OUT.json). Default: a new folder attention/ in the current folder (refused when it exists).",
        ),
    ] = None,
    regions: Annotated[
        Path | None,
        typer.Option(
            help="BED of regions; tiled into model windows as `gitool predict` does. Needs --genome."
        ),
    ] = None,
    genome: Annotated[
        Path | None, typer.Option("--genome", "-g", help="Genome FASTA for --regions.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="A store (`gitool build-dataset` or, for can runs, `gitool synth-motifs`): export windows of --split. Default, when no --regions or --fasta is given: the store the run was trained on."
        ),
    ] = None,
    split: options.Split = "test",
    index: Annotated[
        str | None,
        typer.Option(
            help="Windows of --split, 0-based, e.g. 0,3,5-7. Default: all of --data; the first 4 (0-3) of the run's own store when no input is given."
        ),
    ] = None,
    fasta: Annotated[
        Path | None,
        typer.Option(
            help="FASTA of sequences, each cut into consecutive windows of the model's input length (shorter sequences are an error)."
        ),
    ] = None,
    layer: Annotated[
        list[int] | None,
        typer.Option(
            help="Layer to export (repeatable; default all). Numbering follows Genomic Interpreter: layer k has tokens of 2^(k-1) bp, so for swin-basenji-small layer 8 is the 128-bp layer and layer 9 its transformer block; swin layers export their regular and shifted blocks. Enformer: transformer block i is layer log2(bin_size)+2+i (9-19 for 128-bp bins); can: layer 1."
        ),
    ] = None,
    head: Annotated[
        list[int] | None, typer.Option(help="Head to export, 0-based (repeatable; default all).")
    ] = None,
    rollout: Annotated[
        bool,
        typer.Option(
            "--rollout",
            help="Also write the attention rollout from the last layer's tokens to input bins (rows sum to 1).",
        ),
    ] = False,
    rollout_bp: Annotated[
        int | None,
        typer.Option(
            help="Rollout column size in bp (1: nucleotides). Default: the last layer's token size."
        ),
    ] = None,
    full_max_tokens: Annotated[
        int,
        typer.Option(
            help="Also reassemble a windowed layer into one token x token matrix (zeros outside windows) when it has at most this many tokens; the per-window form is always written."
        ),
    ] = 1024,
    dtype: Annotated[str, typer.Option(help="float32, or float16 for half the size.")] = "float32",
    track_out: Annotated[
        Path | None,
        typer.Option(
            help="bigWig (or bedGraph with --bedgraph) of the attention each token of --track-layer receives (head mean, summed over queries) over the regions' target spans. Needs --regions and --genome."
        ),
    ] = None,
    track_layer: Annotated[
        int | None,
        typer.Option(
            help="Layer for --track-out. Default: the last exported layer (its shifted block for swin)."
        ),
    ] = None,
    bedgraph: Annotated[
        bool, typer.Option("--bedgraph", help="Write --track-out as bedGraph text.")
    ] = False,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot",
            help="PNG heatmaps of the first window in OUT/plots: layers side by side, the heads of one layer, and one layer per window (Genomic Interpreter Fig. 4, appendix C), axes in bp.",
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 1,
    device: options.Device = None,
    which: options.Which = "best",
) -> None:
    """Export attention weights per window and layer as compressed .npz plus an index.

    `gitool attention --layer 8` exports layer 8 of the newest run under runs/ for test windows 0-3 of the store it was trained on, into attention/, printing each default it chooses.

    Per window and layer: the weights (swin windowed layers: windows x heads x query slot x key slot, with each slot's unshifted token index, -1 = padding; full attention: heads x query x key), head mean and max, every token's genomic start/end, and for small layers the windows reassembled into one token x token matrix. Windows stream to disk one at a time, so memory stays bounded. Axes are documented in index.json.
    """
    # lazy: keeps `gitool --help` from importing torch
    from gitool.interpret.attention import attention_from_run

    with progress("attention", total=None) as advance:
        summary = attention_from_run(
            model, out, regions=regions, genome=genome, data=data, split=split, index=index,
            fasta=fasta, which=which, layers=layer, heads=head, rollout=rollout,
            rollout_bp=rollout_bp, full_max_tokens=full_max_tokens, dtype=dtype,
            track_out=track_out, track_layer=track_layer, bedgraph=bedgraph, plot=plot,
            batch_size=batch_size, device=device, on_window=advance,
        )  # fmt: skip
    info(
        f"[green]exported[/] attention of {summary.windows:,} window(s) "
        f"({summary.bytes_written / 2**20:,.1f} MiB) in {summary.seconds:.1f} s"
    )
    info(f"[green]wrote[/] {summary.index}")
    for path in [*summary.tracks, *summary.plots]:
        info(f"[green]wrote[/] {path}")
