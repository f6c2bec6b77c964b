"""``gitool build-dataset``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config import BuildOptions as D
from gitool.console import info


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
    ] = Path(D.out),
    seq_length: Annotated[
        int, typer.Option(help=ranged(D, "seq_length", "Input sequence window, bp."))
    ] = D.seq_length,
    bin_size: Annotated[
        int, typer.Option(help=ranged(D, "bin_size", "Bases pooled into one target bin."))
    ] = D.bin_size,
    target_length: Annotated[
        int,
        typer.Option(
            help=ranged(D, "target_length", "Target bins per window, centred in the window.")
        ),
    ] = D.target_length,
    stride: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "stride",
                "Step between windows, bp. Default: the target span (target-length × bin-size), so targets do not overlap.",
            )  # fmt: skip
        ),
    ] = None,
    chroms: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated chromosome names or globs ('chr*'), or 'all'. Default: primary chromosomes (chr1-22/chrX or yeast chrI-XVI style; all when names are not chr-style); chrM, _random, chrUn, _alt dropped unless named."
        ),
    ] = None,
    max_n_frac: Annotated[
        float | None,
        typer.Option(
            help=ranged(
                D,
                "max_n_frac",
                "Skip windows whose sequence has more than this fraction of N. Default: 0.1, or no filter with --windows (given with --windows, the windows it drops are counted in a warning).",
            )  # fmt: skip
        ),
    ] = None,
    blacklist: Annotated[
        Path | None,
        typer.Option(
            help="BED of regions to avoid (intervals on chromosomes the genome lacks are skipped, ones off a chromosome's end clipped, with a warning)."
        ),
    ] = None,
    max_blacklist_frac: Annotated[
        float,
        typer.Option(
            help=ranged(
                D,
                "max_blacklist_frac",
                "Skip windows whose target span overlaps --blacklist by more than this fraction (0: any overlap).",
            )  # fmt: skip
        ),
    ] = D.max_blacklist_frac,
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
    windows: Annotated[
        Path | None,
        typer.Option(
            help="BED of the exact windows to build (Basenji's sequences.bed: chrom, start, end, split label train/valid/test), each resized around its centre to --seq-length, kept in the BED's order per split. Excludes --stride, --regions, --valid-chroms, --test-chroms and --split-fractions."
        ),
    ] = None,
    split_column: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "split_column",
                "1-based column of the --windows BED holding the split label. Default: 4.",
            )  # fmt: skip
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "seed",
                "Seed for --split-fractions. Same inputs + seed give a byte-identical store.",
            )  # fmt: skip
        ),
    ] = D.seed,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help=ranged(D, "workers", "Processes reading bigWigs. Default: all cores."),
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a previous coverage store (or an empty folder) at --out, only once the new one is complete; never a label store, another folder or one holding an input.",
        ),
    ] = False,
) -> None:
    """Turn a genome FASTA and bigWig coverage tracks into a memory-mapped training store.

    Windows of --seq-length bp tile each chromosome (or are those of a --windows BED); the centre --target-length bins of --bin-size bp are the targets. Per track: float32 values (NaN → 0) → × scale → pool by sum_stat → soft clip → clip → float16 (bins above 65,504 are saturated, with a warning). Coverage must be ≥ 0 after scale and finite (a Poisson model's counts). Every input is checked before any coverage is read; the store appears only when complete.
    """
    options = D(
        genome=str(genome), tracks=str(tracks), out=str(out), seq_length=seq_length,
        bin_size=bin_size, target_length=target_length, stride=stride, chroms=chroms,
        max_n_frac=max_n_frac, blacklist=str(blacklist) if blacklist else None,
        max_blacklist_frac=max_blacklist_frac, regions=str(regions) if regions else None,
        valid_chroms=valid_chroms, test_chroms=test_chroms, split_fractions=split_fractions,
        windows=str(windows) if windows else None, split_column=split_column, seed=seed,
        workers=workers, force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing pandas (gitool.data.build needs it)
    from gitool.data.build import build_store

    summary = build_store(options)
    counts = ", ".join(f"{s} {n:,}" for s, n in summary.counts.items())
    info(
        f"[green]wrote[/] {summary.out}: {counts} windows × {summary.n_tracks} tracks "
        f"in {summary.seconds:.1f} s"
    )
