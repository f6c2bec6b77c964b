"""The ``gitool`` command line. Each command parses its options, calls ONE library
function and prints; the work lives in the library (nothing imports this module).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gitool import __version__
from gitool.console import EXIT_INPUT, console, info, run_reporting_errors, state, stdout_console

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
