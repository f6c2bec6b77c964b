"""``gitool attention``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.attention import AttentionOptions as D
from gitool.console import info, progress


@app.command("attention")
def attention_command(
    model: options.NewestModel = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="A folder (index.json + one window_NNNNNN.npz per window) or a file ending in .npz (one archive, index beside it as OUT.json). Default: a new folder attention/ in the current folder. An existing output is refused unless --force.",
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
    split: options.Split = D.split,
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
            help=ranged(
                D,
                "layer",
                "Layer to export (repeatable; default all). Numbering follows Genomic Interpreter: layer k has tokens of 2^(k-1) bp, so for swin-basenji-small layer 8 is the 128-bp layer and layer 9 its transformer block; swin layers export their regular and shifted blocks. Enformer: transformer block i is layer log2(bin_size)+2+i (9-19 for 128-bp bins); can: layer 1.",
            ),
        ),
    ] = None,
    head: Annotated[
        list[int] | None,
        typer.Option(help=ranged(D, "head", "Head to export, 0-based (repeatable; default all).")),
    ] = None,
    rollout: Annotated[
        bool,
        typer.Option(
            "--rollout",
            help="Also write the attention rollout from the last layer's tokens to input bins (rows sum to 1).",
        ),
    ] = D.rollout,
    rollout_bp: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "rollout_bp",
                "Rollout column size in bp (1: nucleotides). Needs --rollout. Default: the last layer's token size.",
            )  # fmt: skip
        ),
    ] = None,
    full_max_tokens: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "full_max_tokens",
                "Also reassemble a windowed layer into one token x token matrix (zeros outside windows) when it has at most this many tokens; the per-window form is always written.",
            )  # fmt: skip
        ),
    ] = D.full_max_tokens,
    dtype: Annotated[str, typer.Option(help="float32, or float16 for half the size.")] = D.dtype,
    track_out: Annotated[
        Path | None,
        typer.Option(
            help="bigWig (or bedGraph with --bedgraph) of the attention each token of --track-layer receives (mean over the --head heads, all by default; summed over queries) over the regions' target spans. Needs --regions and --genome. An existing file is refused unless --force, which replaces only a bigWig (bedGraph)."
        ),
    ] = None,
    track_layer: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "track_layer",
                "Layer for --track-out. Default: the last exported layer (its shifted block for swin).",
            )  # fmt: skip
        ),
    ] = None,
    bedgraph: Annotated[
        bool, typer.Option("--bedgraph", help="Write --track-out as bedGraph text.")
    ] = D.bedgraph,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot",
            help="PNG heatmaps of the first window in OUT/plots (plots/ beside an OUT.npz): layers side by side, the heads of one layer, and one layer per window (Genomic Interpreter Fig. 4, appendix C), axes along the chromosome in kb (in bp for windows under 2 kb).",
        ),
    ] = D.plot,
    batch_size: Annotated[
        int, typer.Option(help=ranged(D, "batch_size", "Windows per forward pass."))
    ] = D.batch_size,
    device: options.Device = None,
    which: options.Which = D.which,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace earlier outputs: -o only an earlier attention export (a folder holding just its files, or an .npz with its index), the --track-out file and plots only when gitool wrote them earlier and nobody changed them since (listed in .gitool-made.jsonl beside them). The inputs (run, genome, regions, FASTA, store and the files it was built from) are never written over.",
        ),
    ] = D.force,
) -> None:
    """Export attention weights per window and layer as compressed .npz plus an index.

    `gitool attention --layer 8` exports layer 8 of the newest run under runs/ for test windows 0-3 of the store it was trained on, into attention/, printing each default it chooses.

    Per window and layer: the weights (swin windowed layers: windows x heads x query slot x key slot, with each slot's unshifted token index, -1 = padding; full attention: heads x query x key), head mean and max, every token's genomic start/end, and for small layers the windows reassembled into one token x token matrix. Windows stream to disk one at a time, so memory stays bounded. Axes are documented in index.json.
    """

    def text(path: Path | None) -> str | None:
        return None if path is None else str(path)

    options = D(
        model=text(model), out=text(out), regions=text(regions), genome=text(genome),
        data=text(data), split=split, index=index, fasta=text(fasta),
        layer=tuple(layer) if layer else None, head=tuple(head) if head else None,
        rollout=rollout, rollout_bp=rollout_bp, full_max_tokens=full_max_tokens, dtype=dtype,
        track_out=text(track_out), track_layer=track_layer, bedgraph=bedgraph, plot=plot,
        batch_size=batch_size, device=device, which=which, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch
    from gitool.interpret.attention import attention_from_run

    with progress("attention", total=None) as advance:
        summary = attention_from_run(options, on_window=advance)
    info(
        f"[green]exported[/] attention of {summary.windows:,} window(s) "
        f"({summary.bytes_written / 2**20:,.1f} MiB) in {summary.seconds:.1f} s"
    )
    info(f"[green]wrote[/] {summary.index}")
    for path in [*summary.tracks, *summary.plots]:
        info(f"[green]wrote[/] {path}")
