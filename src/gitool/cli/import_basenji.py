"""``gitool import-basenji``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.import_basenji import ImportBasenjiOptions as D
from gitool.console import info


@app.command("import-basenji")
def import_basenji(
    source: Annotated[
        Path,
        typer.Argument(
            help="The release's data folder: statistics.json, sequences.bed, targets.txt and tfrecords/ (e.g. basenji_barnyard/data/human), or the folder holding human/ and mouse/."
        ),
    ],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Output store folder (written atomically).")
    ] = Path(D.out),
    genome: Annotated[
        str | None,
        typer.Option(
            help="Organism to import when SOURCE holds both: human or mouse. Default: SOURCE's only one."
        ),
    ] = None,
    seq_length: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "seq_length",
                "Input sequence window, bp, cropped around each record's centre (default: the Genomic Interpreter paper's BasenjiSmall).",
            )  # fmt: skip
        ),
    ] = D.seq_length,
    target_length: Annotated[
        int,
        typer.Option(
            help=ranged(
                D,
                "target_length",
                "Target bins per window, the record's central bins (80 of 896: bins 408-487).",
            )  # fmt: skip
        ),
    ] = D.target_length,
    compression: Annotated[
        str,
        typer.Option(
            help="Compression of the .tfr files: auto (detected per file), zlib (the release's), gzip or none."
        ),
    ] = D.compression,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            help=ranged(
                D, "workers", "Files read at once. Default: all cores (at most one per file)."
            ),
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted import where it stopped (finished files are not read again); also keeps finished files when a damaged file stops this one.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a previous coverage store (or an empty folder) at --out, only once the new one is complete; never another folder or one holding an input.",
        ),
    ] = False,
) -> None:
    """Import the Basenji/Enformer data release (TFRecords) into a store, without TensorFlow.

    Every record is checked (both CRC32C checksums, its shapes against statistics.json) and cropped around its centre: by default the central 17,712 bp and the central 80 of 896 bins, the Genomic Interpreter paper's BasenjiSmall. Splits, record order, genome coordinates (sequences.bed) and the tracks table (targets.txt) come from the release. Values are stored as the release holds them (already pooled, clipped and scaled by Basenji). Memory: one record per worker. An interrupted import continues file by file with --resume.
    """
    options = D(
        source=str(source), out=str(out), genome=genome, seq_length=seq_length,
        target_length=target_length, compression=compression, workers=workers, resume=resume,
        force=force,
    )  # fmt: skip
    from gitool.data.basenji import import_release  # lazy: pandas, protobuf

    summary = import_release(options)
    counts = ", ".join(f"{s} {n:,}" for s, n in summary.counts.items())
    resumed = f" ({summary.files_resumed} resumed)" if summary.files_resumed else ""
    info(
        f"[green]wrote[/] {summary.out}: {counts} windows × {summary.n_tracks:,} tracks from "
        f"{summary.files:,} files{resumed}, {summary.compressed_bytes / 1e9:,.2f} GB read in "
        f"{summary.seconds:.1f} s"
    )
