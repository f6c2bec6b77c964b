"""The ``gitool`` command line. Each command parses its options, calls ONE library
function and prints; the work lives in the library (nothing imports this module).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gitool import __version__
from gitool.console import (
    EXIT_INPUT,
    console,
    info,
    progress,
    run_reporting_errors,
    state,
    stdout_console,
    warn,
)

app = typer.Typer(
    name="gitool",
    help=(
        "Sequence-to-function deep learning on genomes: build training windows from a FASTA "
        "genome and bigWig tracks, train models, predict, and look inside them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

GLOBAL_FLAGS = ("--debug", "--quiet", "-q")


def _version(value: bool) -> None:
    if value:
        print(f"gitool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show tracebacks on errors (also accepted after the command)."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bars or status lines (also after the command)."
        ),
    ] = False,
) -> None:
    state.debug = state.debug or debug
    state.quiet = state.quiet or quiet


@app.command("build-dataset")
def build_dataset(
    genome: Annotated[
        Path,
        typer.Argument(
            help="Genome FASTA, plain or bgzip (.fa.gz); the .fai index is built if missing."
        ),
    ],
    tracks: Annotated[
        Path,
        typer.Argument(
            help="Tracks file: Basenji targets.txt (header with identifier, file, ...) or 'identifier<TAB>path' lines. Relative paths resolve against its folder."
        ),
    ],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Output store folder (written atomically).")
    ] = Path("data"),
    seq_length: Annotated[int, typer.Option(help="Input sequence window, bp.")] = 17712,
    bin_size: Annotated[int, typer.Option(help="Bases pooled into one target bin.")] = 128,
    target_length: Annotated[
        int, typer.Option(help="Target bins per window, centred in the window.")
    ] = 80,
    stride: Annotated[
        int | None,
        typer.Option(
            help="Step between windows, bp. Default: the target span (target-length × bin-size), so targets do not overlap."
        ),
    ] = None,
    chroms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated chromosome names or globs ('chr*'), or 'all'. Default: primary chromosomes (chr1-22/chrX or yeast chrI-XVI style; all when names are not chr-style); chrM, _random, chrUn, _alt dropped unless named."
        ),
    ] = None,
    max_n_frac: Annotated[
        float, typer.Option(help="Skip windows whose sequence has more than this fraction of N.")
    ] = 0.1,
    blacklist: Annotated[Path | None, typer.Option(help="BED of regions to avoid.")] = None,
    max_blacklist_frac: Annotated[
        float,
        typer.Option(
            help="Skip windows whose target span overlaps --blacklist by more than this fraction (0: any overlap)."
        ),
    ] = 0.0,
    regions: Annotated[
        Path | None,
        typer.Option(help="BED: keep only windows whose target span overlaps these regions."),
    ] = None,
    valid_chroms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated validation chromosomes. Default: chr8 when present, else the chromosome nearest 5% of the kept genome."
        ),
    ] = None,
    test_chroms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated test chromosomes. Default: chr9 when present, else the chromosome nearest 5% of the kept genome."
        ),
    ] = None,
    split_fractions: Annotated[
        str | None,
        typer.Option(
            help="Split by fraction instead of chromosome: 'train,valid,test', e.g. 0.9,0.05,0.05. Whole blocks of 16 target spans are dealt to splits with --seed; windows never straddle splits."
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed for --split-fractions. Same inputs + seed give a byte-identical store."
        ),
    ] = 0,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-j", help="Processes reading bigWigs. Default: all cores."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing store at --out (only once the new one is complete).",
        ),
    ] = False,
) -> None:
    """Turn a genome FASTA and bigWig coverage tracks into a memory-mapped training store.

    Windows of --seq-length bp tile each chromosome; the centre --target-length bins of --bin-size bp are the targets. Per track: float32 values (NaN → 0) → × scale → pool by sum_stat → soft clip → clip → float16. Every input is checked before any coverage is read; the store appears only when complete.
    """
    from gitool.config import BuildOptions
    from gitool.data.store import build_store

    options = BuildOptions(
        genome=str(genome), tracks=str(tracks), out=str(out), seq_length=seq_length,
        bin_size=bin_size, target_length=target_length, stride=stride, chroms=chroms,
        max_n_frac=max_n_frac, blacklist=str(blacklist) if blacklist else None,
        max_blacklist_frac=max_blacklist_frac, regions=str(regions) if regions else None,
        valid_chroms=valid_chroms, test_chroms=test_chroms, split_fractions=split_fractions,
        seed=seed, workers=workers, force=force,
    )  # fmt: skip
    summary = build_store(options)
    counts = ", ".join(f"{s} {n:,}" for s, n in summary.counts.items())
    info(
        f"[green]wrote[/] {summary.out}: {counts} windows × {summary.n_tracks} tracks "
        f"in {summary.seconds:.1f} s"
    )


@app.command("info")
def info_command(
    data: Annotated[Path, typer.Argument(help="A store folder made by `gitool build-dataset`.")],
) -> None:
    """Summarise a store: genome, window geometry, splits, tracks and their value ranges."""
    from gitool.data.summary import describe_store

    stdout_console().print(describe_store(data))


@app.command("train")
def train_command(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="Store folder(s) from `gitool build-dataset` (coverage) or `gitool synth-motifs` (labels, for can-* models). Repeat for several coverage datasets with their own heads (batches alternate).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model or preset name (see `gitool models`). Default: swin-basenji-small. Input length, bins and track or task counts follow the data."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML file with any of these options (snake_case keys) plus model_config; flags given here override it."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="Run folder: config.yaml, metrics.jsonl, checkpoints/{last,best}.pt. Default: runs/run.",
        ),
    ] = None,
    heads: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated head name per --data (default: each store folder's name)."
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option(
            help="GPUs on this node (default: all visible; 0 = CPU). 2 or more re-launch gitool through torchrun with DDP/NCCL."
        ),
    ] = None,
    procs: Annotated[
        int | None, typer.Option(help="CPU processes (gloo DDP) when --gpus 0. Default 1.")
    ] = None,
    nodes: Annotated[
        int | None, typer.Option(help="Machines in the job (with --rdzv-endpoint). Default 1.")
    ] = None,
    node_rank: Annotated[
        int | None, typer.Option(help="This machine's rank among --nodes.")
    ] = None,
    rdzv_endpoint: Annotated[
        str | None, typer.Option(help="HOST:PORT every node can reach, for --nodes > 1.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Windows per batch per process (seed 000: 8 per GPU).")
    ] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Batches per optimizer step.")] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Adam learning rate (seed 000: 3e-4; seed 002: 1e-3)."),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            help="Learning-rate schedule: cosine (to 0 over the run; default), plateau (× --lr-decay after --lr-patience evaluations without a better valid score; seed 002) or constant."
        ),
    ] = None,
    lr_decay: Annotated[
        float | None, typer.Option(help="plateau: factor per decay (default 0.3).")
    ] = None,
    lr_patience: Annotated[
        int | None,
        typer.Option(help="plateau: evaluations without improvement before a decay (default 5)."),
    ] = None,
    warmup_steps: Annotated[
        int | None,
        typer.Option(help="Linear warm-up steps before the cosine or constant schedule."),
    ] = None,
    grad_clip: Annotated[
        float | None, typer.Option(help="Clip the gradient norm to this (default: no clipping).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the (first) training set. Default 10.")
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Stop after this many optimizer steps (sets the schedule's length)."),
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many evaluations without a better valid score (mean Pearson; mean AUPR for label stores)."
        ),
    ] = None,
    min_delta: Annotated[
        float | None,
        typer.Option(
            help="--patience and the plateau schedule count an evaluation as better only when the valid score rises by more than this (default 0: any rise), so a run creeping up by 1e-4 at a tiny learning rate stops."
        ),
    ] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="Evaluate every N steps (default: every epoch).")
    ] = None,
    valid_windows: Annotated[
        int | None, typer.Option(help="Use at most this many validation windows per evaluation.")
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            help="Write checkpoints/last.pt every N steps (and at each epoch's end). Default 500."
        ),
    ] = None,
    log_every: Annotated[
        int | None,
        typer.Option(
            help="Append loss, lr and samples/s to metrics.jsonl every N steps. Default 10."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for weights, data order and augmentation.")
    ] = None,
    shift: Annotated[
        int | None,
        typer.Option(
            help="Random shift augmentation, ± bp (default 3; 0 = off). Coverage stores only: label stores train on their sequences as stored."
        ),
    ] = None,
    rc: Annotated[
        bool | None,
        typer.Option(
            "--rc/--no-rc",
            help="Reverse-complement augmentation (default on; stranded tracks swap). Coverage stores only.",
        ),
    ] = None,
    num_workers: Annotated[
        int | None,
        typer.Option(help="DataLoader worker processes per training process. Default 2."),
    ] = None,
    bf16: Annotated[
        bool | None, typer.Option("--bf16/--no-bf16", help="bf16 autocast on GPU (default on).")
    ] = None,
    compile: Annotated[
        bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option("--resume", help="Continue the run in --out from checkpoints/last.pt."),
    ] = None,
) -> None:
    """Train a model on one or more stores: one process, or many through torchrun.

    Defaults follow seed 000: Adam, lr 3e-4, cosine annealing, batch 8 per GPU, Poisson loss; shift and reverse-complement augmentation on. A label store (`gitool synth-motifs`) trains a can-* model with binary cross-entropy and picks the best checkpoint by valid mean AUPR; workflows/can-glifac.yaml holds seed 002's settings (Adam lr 1e-3, batch 100, 100 epochs, lr × 0.3 after 5 epochs without a better AUPR). Each option may also come from --config (flags win); the resolved options are saved as RUN/config.yaml.
    """
    from gitool.train.run import run_training

    flags = dict(
        data=[str(p) for p in data] if data else None, model=model, out=str(out) if out else None,
        heads=heads.split(",") if heads else None, gpus=gpus, procs=procs, nodes=nodes,
        node_rank=node_rank, rdzv_endpoint=rdzv_endpoint, batch_size=batch_size,
        grad_accum=grad_accum, lr=lr, schedule=schedule, lr_decay=lr_decay,
        lr_patience=lr_patience, warmup_steps=warmup_steps, grad_clip=grad_clip,
        epochs=epochs, max_steps=max_steps, patience=patience, min_delta=min_delta,
        eval_every=eval_every,
        valid_windows=valid_windows, checkpoint_every=checkpoint_every, log_every=log_every,
        seed=seed, shift=shift,
        rc=rc, num_workers=num_workers, bf16=bf16, compile=compile, resume=resume,
    )  # fmt: skip
    summary = run_training(str(config) if config else None, flags)
    if summary is not None:
        best = "—" if summary.best is None else f"{summary.best:.4f}"
        info(
            f"[green]done[/] {summary.out}: {summary.step} steps, best valid {summary.score} {best} (stopped: {summary.stopped})"
        )


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
    split: Annotated[str, typer.Option(help="Split to evaluate: train, valid or test.")] = "test",
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
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu, cuda or cuda:N. Default: cuda when available (bf16 autocast), else cpu."
        ),
    ] = None,
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
            help="Another run (or checkpoint) evaluated on the same data and split; repeat for several (seed 000 Table 1 with every model). Each adds its row to the table and writes its per-track SPLIT.compare.NAME.tsv and the paired per-track Pearson scatter against RUN, SPLIT.compare.NAME.png (seed 000 Fig. 2)."
        ),
    ] = None,
    plot_window: Annotated[
        int | None,
        typer.Option(
            help="Also draw predicted vs observed coverage of this window (0-based row of the split's windows.bed) as .window<N>.png (seed 000 Fig. 3)."
        ),
    ] = None,
    plot_tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or indices drawn by --plot-window. Default: the first 8 tracks."
        ),
    ] = None,
    which: Annotated[
        str,
        typer.Option(
            help="Checkpoint of a run folder: best (best mean valid Pearson; falls back to last) or last."
        ),
    ] = "best",
) -> None:
    """Per-track Pearson, R² and Poisson loss of a trained run on a store split, grouped like seed 000 Table 1.

    Each track's Pearson is over every bin of every window of the split (not per window, not across tracks). The table's columns are mean Pearsons: DNASE/ATAC, CHIP, CAGE, other (RNA and every other group) and OVERALL (all tracks); — marks a group without tracks. Files are written atomically.
    """
    from gitool.train.evaluate import evaluate

    result = evaluate(
        run, data, split=split, head=head, batch_size=batch_size, device=device, out=out,
        compare=compare, plot_window=plot_window, which=which,
        plot_tracks=plot_tracks.split(",") if plot_tracks else None,
    )  # fmt: skip
    stdout_console().print(result.table())
    for path in result.paths.values():
        info(f"[green]wrote[/] {path}")


@app.command("predict")
def predict_command(
    regions: Annotated[
        Path,
        typer.Argument(
            help="BED of regions to predict (0-based, half-open; 3+ columns; plain or gzip-compressed). Overlapping or adjacent regions merge; each snaps outwards to the bin grid (multiples of the bin size). A region on a chromosome the genome lacks is an error; one running past its chromosome's end is clipped to it, with a warning."
        ),
    ],
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="Run folder made by `gitool train` (uses its checkpoints/best.pt; see --which) or a checkpoint .pt file.",
        ),
    ],
    genome: Annotated[
        Path,
        typer.Option(
            "--genome",
            "-g",
            help="Genome FASTA (plain or bgzip) of the assembly the model was trained on.",
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "-o",
            "--out",
            help="Output. One track: this bigWig (a .bedgraph name with --bedgraph). Several: OUT.<identifier>.bw, or DIR/<identifier>.bw when it ends with / or is a folder. Files appear only when complete.",
        ),
    ],  # str: keep a trailing "/"
    head: Annotated[
        str | None, typer.Option(help="Model head. Default: the model's only head.")
    ] = None,
    tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or 0-based indices of the head. Default: all."
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Model inputs per forward pass (results do not depend on it).")
    ] = 8,
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu, cuda or cuda:N. Default: cuda when available (bf16 autocast), else cpu."
        ),
    ] = None,
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
    ] = "0",
    untransform: Annotated[
        bool,
        typer.Option(
            "--untransform",
            help="Undo the store's soft clip, sqrt and scale per track, giving the bigWigs' units (hard clip cannot be undone).",
        ),
    ] = False,
    bedgraph: Annotated[
        bool,
        typer.Option(
            "--bedgraph",
            help="Write bedGraph text (chrom start end value per bin) instead of bigWig.",
        ),
    ] = False,
    which: Annotated[
        str, typer.Option(help="Checkpoint of a run folder: best (falls back to last) or last.")
    ] = "best",
) -> None:
    """Predict coverage over regions and write one bigWig per track.

    Model windows are tiled so their target spans cover each region (N beyond chromosome ends) and predicted in batches; the bins are stitched and streamed to the files, so memory stays bounded for whole chromosomes. bigWig header: every chromosome of the genome in FASTA order; one entry per bin of the model's bin size, the last bin of a chromosome clipped to its end. Values are in the store's units unless --untransform.
    """
    from gitool.predict.inference import predict

    summary = predict(
        model, genome, regions, out, head=head, tracks=tracks, batch_size=batch_size,
        device=device, rc=rc, shifts=shifts, untransform=untransform, bedgraph=bedgraph,
        which=which,
    )  # fmt: skip
    info(
        f"[green]predicted[/] {summary.bp:,} bp in {summary.n_regions:,} region(s) "
        f"({summary.n_windows:,} windows, head {summary.head}) in {summary.seconds:.1f} s"
    )
    for path in summary.paths:
        info(f"[green]wrote[/] {path}")


@app.command("attention")
def attention_command(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="Run folder made by `gitool train` (uses its checkpoints/best.pt; see --which) or a checkpoint .pt file. Models with attention: swin, enformer, can.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="A folder (index.json + one window_NNNNNN.npz per window) or a file ending in .npz (one archive, index beside it as OUT.json).",
        ),
    ],
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
            help="A store (`gitool build-dataset` or, for can runs, `gitool synth-motifs`): export windows of --split."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --data.")] = "test",
    index: Annotated[
        str | None, typer.Option(help="Windows of --split, 0-based, e.g. 0,3,5-7. Default: all.")
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
            help="Layer to export (repeatable; default all). Numbering follows seed 000: layer k has tokens of 2^(k-1) bp, so for swin-basenji-small layer 8 is the 128-bp layer and layer 9 its transformer block; swin layers export their regular and shifted blocks. Enformer: transformer block i is layer log2(bin_size)+2+i (9-19 for 128-bp bins); can: layer 1."
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
            help="PNG heatmaps of the first window in OUT/plots: layers side by side, the heads of one layer, and one layer per window (seed 000 Fig. 4, appendix C), axes in bp.",
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 1,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or cuda:N. Default: cuda when available.")
    ] = None,
    which: Annotated[
        str, typer.Option(help="Checkpoint of a run folder: best (falls back to last) or last.")
    ] = "best",
) -> None:
    """Export attention weights per window and layer as compressed .npz plus an index.

    Per window and layer: the weights (swin windowed layers: windows x heads x query slot x key slot, with each slot's unshifted token index, -1 = padding; full attention: heads x query x key), head mean and max, every token's genomic start/end, and for small layers the windows reassembled into one token x token matrix. Windows stream to disk one at a time, so memory stays bounded. Axes are documented in index.json.
    """
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


@app.command("synth-motifs")
def synth_motifs_command(
    out: Annotated[
        Path,
        typer.Option("-o", "--out", help="Label store folder to write."),
    ] = Path("motifs"),
    sequences: Annotated[
        int, typer.Option("-n", "--sequences", help="Number of sequences (seed 002: 100,000).")
    ] = 100_000,
    length: Annotated[int, typer.Option(help="Sequence length in bp (seed 002: 200).")] = 200,
    motifs: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated built-in motif names, or a JASPAR/MEME motif file. Default: the 12 JASPAR 2024 motifs of seed 002 (CEBPB ELF1 ESR1 FOXN3 GATA1 IRF1 NFIB SIX3 SPI1 TAL1 TEAD1 YY1); SP1 is also built in (the authors' code has SP1 where the paper says SPI: --motifs with SP1 for SPI1 and --interactions ...,IRF1/SP1:xor)."
        ),
    ] = None,
    interactions: Annotated[
        str | None,
        typer.Option(
            help="Motif pairs and their logic, e.g. ELF1/SIX3:and,ESR1/FOXN3:xor ('and': both labelled only together; 'xor': each labelled when alone, neither when both present), or 'none'. Default: seed 002's ELF1/SIX3:and, TAL1/GATA1:and, ESR1/FOXN3:xor, IRF1/SPI1:xor."
        ),
    ] = None,
    min_instances: Annotated[int, typer.Option(help="Fewest motif instances per sequence.")] = 1,
    max_instances: Annotated[int, typer.Option(help="Most motif instances per sequence.")] = 5,
    split_fractions: Annotated[
        str, typer.Option(help="Train,valid,test fractions (seed 002: 0.7,0.1,0.2).")
    ] = "0.7,0.1,0.2",
    seed: Annotated[int, typer.Option(help="Seed for sequences, instances and the split.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Generate seed 002's synthetic motif-interaction benchmark as a label store.

    Random uniform sequences with 1-5 non-overlapping motif instances each (sampled from the motifs' frequency matrices, either strand, at least 1 bp apart and from the ends), one binary label per motif following the interaction logic, a seeded train/valid/test split, the instance table and the ground-truth interactions. Train a CAN on it with `gitool train --config workflows/can-glifac.yaml --data OUT`, then find the interactions with `gitool interactions`.
    """
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


@app.command("interactions")
def interactions_command(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="Run folder made by `gitool train` (uses checkpoints/best.pt; see --which) or a checkpoint .pt file: a can, swin or enformer model.",
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="The store the model was trained on: a label store from `gitool synth-motifs` (can), or a build-dataset store (swin, enformer). Default: the run's own training store (when it was one store).",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Output folder (maps as TSV and PNG, scores).")
    ] = Path("interactions"),
    split: Annotated[str, typer.Option(help="Split to read: train, valid or test.")] = "test",
    threshold: Annotated[
        list[float] | None,
        typer.Option(
            help="Attention threshold in [0, 1] above which a position pair counts as attended (default 0.1, seed 002). Repeat for a sweep, e.g. --threshold 0.1 --threshold 0.3; all thresholds come from one pass. Pick one well above even attention (1 / tokens: 0.02 for can pool 4, 0.1 for pool 20); a warning says when a threshold passes most pairs."
        ),
    ] = None,
    layer: Annotated[
        int | None,
        typer.Option(
            help="Attention layer whose input channels are the 'filters' (seed 000 numbering, as in `gitool attention`). Default: the model's last attention layer; can models have layer 1 only, and use their first convolution's filters."
        ),
    ] = None,
    motifs: Annotated[
        str | None,
        typer.Option(
            help="Motifs to label CAN filters with: comma-separated built-in names or a JASPAR/MEME file. Default: the store's motifs.jaspar, else the 12 built-in motifs."
        ),
    ] = None,
    min_similarity: Annotated[
        float | None,
        typer.Option(
            help="A filter takes its best-matching motif's label when their similarity (cosine of the centred PPMs over the motif, in (0, 1]) reaches this. Default 0.7: against the 12 built-in motifs, 1.7 % of untrained filters reach 0.7 and 0.1 % reach 0.75 (median 0.53); trained motif detectors score 0.8-1."
        ),
    ] = None,
    sequences: Annotated[
        int | None, typer.Option(help="Use only the first N sequences of the split.")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Sequences per forward pass (default 256 for can, 8 for swin/enformer)."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="cpu, cuda or cuda:N. Default: cuda when available, else cpu."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random position pairs.")] = 0,
    random_pairs: Annotated[
        str,
        typer.Option(
            help="GLIFAC's equal number of random position pairs: sample (seed 002: drawn with --seed), expected (their expectation: every pair of the sequence, weighted to the same total; no sampling noise), or none (attended pairs only, an ablation)."
        ),
    ] = "sample",
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write the heatmap PNGs.")] = True,
    which: Annotated[str, typer.Option(help="Checkpoint of a run folder: best or last.")] = "best",
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Find motif interactions from attention: GLIFAC and the local-attention baseline (seed 002).

    GLIFAC: attention maxed over heads; position pairs with attention >= --threshold (self-pairs removed) plus as many random pairs; the Pearson correlation of every filter's activation at the first position with every filter's at the second, across all pairs of the split; symmetrised keeping the larger magnitude. The local baseline (SATORI) counts the pairs of filters active (above half their maximum) at the two attended positions. CAN filters are labelled by their best-matching motif (their position probability matrix from sites above half their maximum, compared with the motifs), giving motif x motif maps; on a `gitool synth-motifs` store they are scored against the ground truth by AUROC, AUPR and SNR, over the 66 motif pairs (each its strongest filter pair) and over all pairs of differently labelled filters (the authors' unit). Writes filters.tsv/.meme, the filter and motif maps per threshold as TSV and PNG, and scores.tsv.
    """
    from rich.table import Table

    from gitool.interpret.interactions import interactions_from_run

    result = interactions_from_run(
        model, data, out, which=which, device=device, split=split,
        thresholds=threshold or (0.1,), layer=layer, motifs=motifs,
        min_similarity=min_similarity, sequences=sequences, batch_size=batch_size, seed=seed,
        random_pairs=random_pairs, plot=plot, force=force,
    )  # fmt: skip
    labelled = result.filters.get("motif")
    if labelled is not None:
        found = sorted({m for m in labelled if m})
        info(
            f"{(labelled != '').sum()} of {len(labelled)} filters match a motif "
            f"({', '.join(found) or 'none'})"
        )
    if result.scores is not None:
        table = Table(title="Motif interactions vs the ground truth")
        for column in ("method", "scored", "threshold", "AUROC", "AUPR", "SNR", "pairs"):
            table.add_column(column, justify="left" if column in ("method", "scored") else "right")
        for row in result.scores.itertuples():
            table.add_row(
                row.method, f"{row.level} pairs", f"{row.threshold:g}", f"{row.auroc:.3f}",
                f"{row.aupr:.3f}", f"{row.snr:.2f}", f"{row.pairs:,}",
            )  # fmt: skip
        stdout_console().print(table)
    info(f"[green]wrote[/] {result.out}")


@app.command("quickstart")
def quickstart_command(
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Folder for everything the quickstart makes (data/, runs/swin/, runs/cnn-maxpool/, eval/, predictions/, attention/). Must be new or empty unless --force.",
        ),
    ] = Path("gitool-quickstart"),
    steps: Annotated[
        int,
        typer.Option(
            help="Optimizer steps for each of the two models. The default keeps the whole quickstart under 5 minutes on 2 CPU cores."
        ),
    ] = 200,
    example_data: Annotated[
        Path | None,
        typer.Option(
            help="The example_data/ folder of a gitool source checkout (with workflows/ beside it), or the checkout itself. Default: the one beside the installed gitool."
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu or cuda. Default: cuda when available (training on one GPU, bf16), else cpu."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Use a non-empty --out, replacing the quickstart's own outputs in it (nothing else there is touched).",
        ),
    ] = False,
) -> None:
    """Run the whole pipeline on the bundled example data (yeast genome, 7 tracks) in one folder.

    build-dataset → train a small Genomic Interpreter (workflows/example-swin.yaml) and a CNN baseline (workflows/example-cnn-maxpool.yaml) → evaluate both on the test split (prints the grouped table) → predict example_data/regions.bed to bigWig → export attention of one test window with PNG heatmaps; then prints where everything is and the commands to try next.
    """
    from gitool.quickstart import run_quickstart

    summary = run_quickstart(
        out, steps=steps, example_data=example_data, device=device, force=force
    )
    stdout_console().print(summary.evaluation.table())
    stdout_console().print(summary.report(), markup=False, highlight=False, soft_wrap=True)


@app.command("models")
def models_command() -> None:
    """List the models and presets: parameters, input and output shapes.

    Use a name with `gitool train --model NAME`; presets fix a model's sizes (`*-basenji-small`: 17,712 bp → 80 bins of 128 bp; `enformer`: the full 196,608-bp model; `can-*`: seed 002's 200-bp motif models). Parameter counts are for the default heads.
    """
    from gitool.models.summary import models_table

    stdout_console().print(models_table())


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Exit codes: 0 ok, 2 bad input, 1 internal error."""
    args = list(sys.argv[1:] if argv is None else argv)
    state.debug = "--debug" in args
    state.quiet = "--quiet" in args or "-q" in args
    args = [a for a in args if a not in GLOBAL_FLAGS]
    command = typer.main.get_command(app)

    def invoke() -> int:
        try:
            return command.main(args, prog_name="gitool", standalone_mode=False) or 0
        except typer.Abort:
            console.print("[red]aborted[/]")
            return 130
        except Exception as err:
            # Usage errors (typer's bundled click or click itself): one line, exit 2.
            if not (hasattr(err, "format_message") and getattr(err, "exit_code", None) == 2):
                raise
            ctx = getattr(err, "ctx", None)
            if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
                console.print(ctx.get_help())
                return 0
            path = ctx.command_path if ctx is not None else "gitool"
            console.print(
                f"[red]error:[/] {err.format_message()} (see `{path} --help`)", soft_wrap=True
            )
            return EXIT_INPUT

    sys.exit(run_reporting_errors(invoke))
