"""``gitool variants``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli import options
from gitool.cli.app import app
from gitool.cli.options import ranged
from gitool.config.variants import VariantOptions as D
from gitool.console import info


@app.command("variants")
def variants_command(
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Output: the scores TSV for a VCF (with --profiles also OUT-stem.profiles.npz); the ISM .npz for --ism (and OUT-stem.png beside it). Files appear only when complete; existing ones are refused unless --force; the run, genome, VCF and the files the run's store was built from are never written over.",
        ),
    ],
    variants: Annotated[
        Path | None,
        typer.Argument(
            help="VCF of the variants to score (plain, bgzip-compressed .vcf.gz, or BCF). One row per ALT allele (multi-allelic records are split); REF is checked against the genome. Leave out with --ism."
        ),
    ] = None,
    ism: Annotated[
        str | None,
        typer.Option(
            help="In-silico saturation mutagenesis instead of a VCF: CHROM:START-END (1-based, inclusive, at most 20,000 bp). Every base is changed to each of the three others and scored as that SNV in a VCF would be, giving an (L, 4) map per track in the .npz and a PNG."
        ),
    ] = None,
    model: options.NewestModel = None,
    genome: options.RecordedGenome = None,
    head: options.Head = None,
    tracks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated track identifiers or 0-based indices of the head. Default: all."
        ),
    ] = None,
    stats: Annotated[
        str,
        typer.Option(
            help="Comma-separated scores per variant × track, over the target bins: sum (Σalt − Σref, Basenji's SAD), log2fc (log2 of (Σalt + c)/(Σref + c), c = --pseudocount), max_abs (largest |alt − ref| of a bin), l2 (√Σ(alt − ref)²)."
        ),
    ] = D.stats,
    pseudocount: Annotated[
        float, typer.Option(help=ranged(D, "pseudocount", "Added to both sums by log2fc."))
    ] = D.pseudocount,
    rc: Annotated[
        bool,
        typer.Option(
            "--rc",
            help="Also score the reverse complement and average (bins reversed back, stranded tracks swapped through strand_pair).",
        ),
    ] = False,
    shifts: Annotated[
        str,
        typer.Option(
            help="Comma-separated input shifts in bp, e.g. 0,1,-1, each smaller than the model's bin size; predictions are averaged."
        ),
    ] = D.shifts,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=ranged(
                D,
                "batch_size",
                "Model inputs per forward pass; a variant's reference and alternate always share one (scores do not depend on it, beyond float32 rounding). Default: 32 on a CUDA GPU, 8 on the CPU, or two per ensemble member (--rc, --shifts) when that is more.",
            )
        ),
    ] = None,
    device: options.Device = None,
    bf16: Annotated[
        bool,
        typer.Option(
            "--bf16",
            help="Run the model under bf16 autocast on a CUDA GPU: faster, but each prediction keeps about 3 significant digits, so effects smaller than about 1% of it become rounding noise. Default: float32.",
        ),
    ] = D.bf16,
    untransform: Annotated[
        bool,
        typer.Option(
            "--untransform",
            help="Undo the store's soft clip, sqrt and scale per bin before scoring (the bigWigs' units).",
        ),
    ] = False,
    allow_ref_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-ref-mismatch",
            help="Also score variants whose REF differs from the genome (status stays ref_mismatch; its REF is put into the genome for the reference input, in place of as many bases as REF has, or as ALT has where the genome carries ALT: a swapped record scores the unswapped one negated).",
        ),
    ] = False,
    long: Annotated[
        bool,
        typer.Option(
            "--long",
            help="Long TSV: one row per variant × track, one column per statistic (default: one row per variant, a STAT:TRACK column each).",
        ),
    ] = False,
    profiles: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated variant IDs (the VCF's ID, or CHROM:POS:REF:ALT where it is '.') whose per-bin reference and alternate predictions to write to OUT-stem.profiles.npz."
        ),
    ] = None,
    which: options.Which = D.which,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace output files (TSV, .npz, PNG) gitool wrote earlier and nobody changed since (listed in .gitool-made.jsonl beside them); never a file of the user's, never the command's inputs.",
        ),
    ] = D.force,
) -> None:
    """Score variants with a trained model: reference and alternate predicted together, compared per track.

    `gitool variants calls.vcf.gz -o scores.tsv` uses the newest run under runs/ and the genome its store was built from, printing both.

    Each variant gets the window of a `gitool predict` window whose target span is centred on it; the alternate input replaces REF by ALT (an indel's downstream bins are displaced by its length change, so indels changing the length by a bin or more are skipped). The TSV has id, chrom, pos (1-based), ref, alt and status (ok, padded, or why it was skipped), then the scores; a summary line counts scored and skipped variants by reason.
    """
    chosen = D(
        out=str(out), variants=str(variants) if variants else None, ism=ism,
        model=str(model) if model else None, genome=str(genome) if genome else None,
        head=head, tracks=tracks, stats=stats, pseudocount=pseudocount, rc=rc, shifts=shifts,
        batch_size=batch_size, device=device, bf16=bf16, untransform=untransform,
        allow_ref_mismatch=allow_ref_mismatch, long=long, profiles=profiles, which=which,
        force=force,
    )  # fmt: skip
    # lazy: keeps `gitool --help` from importing torch and pysam
    from gitool.variants.command import run_variants

    summary = run_variants(chosen)
    info(f"{summary.line(allow_ref_mismatch)} in {summary.seconds:.1f} s (head {summary.head})")
    for path in summary.paths:
        info(f"[green]wrote[/] {path}")
