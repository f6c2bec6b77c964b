"""``gitool variants``: scores of a VCF written as TSV (and chosen variants' per-bin
predictions as ``.npz``), or the ISM maps of a region as ``.npz`` plus a PNG.

Every output is claimed before any inference (:class:`gitool.files.Outputs`: an existing
file replaced only with ``force`` and only when gitool made it (:mod:`gitool.made`); the run, checkpoint, genome,
VCF and the files the run's store was built from never) and appears only when complete.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gitool.config.variants import VariantOptions
from gitool.console import warn
from gitool.errors import InputError, opt
from gitool.files import Outputs, committed_together, staged_file
from gitool.runs import resolve_device
from gitool.variants.ism import IsmMaps, ism_variants, parse_region
from gitool.variants.scoring import VariantScores, iter_variant_scores
from gitool.variants.vcf import SCORED, STATUSES, UNKNOWN_CHROM


@dataclass
class VariantSummary:
    """What ``gitool variants`` wrote: ``counts`` of variants per status."""

    paths: list[Path]
    counts: dict[str, int]
    head: str
    label: str
    seconds: float
    device: str
    n_tracks: int
    stats: tuple[str, ...] = ()
    missing_profiles: list[str] = field(default_factory=list)

    @property
    def n_variants(self) -> int:
        return sum(self.counts.values())

    def line(self, allowed_mismatch: bool = False) -> str:
        """``scored 9,812 of 10,000 variants; skipped: ref_mismatch 120, symbolic 68``."""
        scored = {s for s in self.counts if s in SCORED}
        if allowed_mismatch:
            scored.add("ref_mismatch")
        n = sum(self.counts[s] for s in scored)
        skipped = sorted(
            ((s, c) for s, c in self.counts.items() if s not in scored), key=lambda x: -x[1]
        )
        text = f"scored {n:,} of {self.n_variants:,} variants"
        padded = self.counts.get("padded", 0)
        if padded:
            text += f" ({padded:,} padded with N past a chromosome end)"
        if skipped:
            text += "; skipped: " + ", ".join(f"{s} {c:,}" for s, c in skipped)
        return text


def _scores(
    options: VariantOptions, variants, profiles=None, total=None, model=None, genome=None
) -> VariantScores:
    return iter_variant_scores(
        model or options.model, genome or options.genome, variants, head=options.head, tracks=options.tracks,
        stats=options.stats, pseudocount=options.pseudocount, rc=options.rc,
        shifts=options.shifts, batch_size=options.batch_size, device=options.device,
        bf16=options.bf16, untransform=options.untransform, allow_ref_mismatch=options.allow_ref_mismatch,
        profiles=profiles, which=options.which, total=total,
    )  # fmt: skip


def run_variants(options: VariantOptions) -> VariantSummary:
    """Score ``options.variants`` (a VCF) or map ``options.ism`` (a region); see the module
    docstring.

    Raises:
        InputError: neither or both of a VCF and ``ism``; anything
        :func:`gitool.variants.scoring.iter_variant_scores` raises; an output refused —
        all before any inference but a malformed VCF record found while streaming, which
        leaves no output either.
    """
    if (options.variants is None) == (options.ism is None):
        raise InputError(
            f"give a VCF to score, or {opt('ism')} CHROM:START-END for a region's saturation "
            "mutagenesis — one of the two",
            field="variants",
        )
    if options.ism is not None:
        for name in ("profiles", "long", "allow_ref_mismatch"):
            if getattr(options, name):
                raise InputError(f"applies to a VCF, not to {opt('ism')}", field=name)
        return _run_ism(options)
    return _run_vcf(options)


def _run_vcf(options: VariantOptions) -> VariantSummary:
    began = time.perf_counter()
    wanted = [p.strip() for p in (options.profiles or "").split(",") if p.strip()]
    scores = _scores(options, options.variants, profiles=wanted)
    outputs = Outputs(options.force, inputs=scores.inputs)
    out = outputs.file(options.out, "TSV", field="out")
    profile_path = None
    if wanted:
        profile_path = outputs.file(_sibling(out, ".profiles.npz"), "npz", field="profiles")
    with committed_together(), ExitStack() as stack:  # the TSV and profiles, or neither
        tmp = stack.enter_context(staged_file(out))
        with open(tmp, "w") as handle:
            first, unknown = True, None
            for frame in scores:
                if unknown is None and (frame["status"] == UNKNOWN_CHROM).any():
                    unknown = str(frame.loc[frame["status"] == UNKNOWN_CHROM, "chrom"].iloc[0])
                table = scores.long(frame) if options.long else frame
                table.to_csv(
                    handle, sep="\t", index=False, header=first, float_format="%.6g", na_rep="NA"
                )
                first = False
            if first:  # no variant at all: the header alone
                empty = scores.empty()
                (scores.long(empty) if options.long else empty).to_csv(
                    handle, sep="\t", index=False
                )
        if unknown is not None and scores.counts[UNKNOWN_CHROM] == sum(scores.counts.values()):
            raise InputError(  # a VCF of another assembly: a table of NA helps nobody
                f"{options.variants}: none of its chromosomes is in the genome (the first, "
                f"{unknown}, is not); give the genome of the VCF's assembly with "
                f"{opt('genome')}, or rename the VCF's chromosomes (bcftools annotate "
                "--rename-chrs)",
                field="variants",
            )
        missing = sorted(set(wanted) - {p["variant"].id for p in scores.profiles})
        if profile_path is not None:  # written even with none scored: no stale file stays
            with staged_file(profile_path) as npz:
                _write_profiles(npz, scores)
    paths = [out] + ([profile_path] if profile_path else [])
    return _summary(options, scores, paths, began, missing)


def _sibling(path: Path, suffix: str) -> Path:
    """``scores.tsv`` → ``scores<suffix>``."""
    return path.with_name((path.stem if path.suffix else path.name) + suffix)


def _write_profiles(path: Path, scores: VariantScores) -> None:
    """The per-bin predictions of the chosen variants: ``ref``/``alt`` float32
    ``(n, target_length, tracks)`` in genome orientation, bin ``j`` of variant ``i`` starting
    at ``target_start[i] + j·bin_size`` (0-based; for an indel the alternate's bins
    downstream of the variant are displaced, see :mod:`gitool.variants.alleles`). None
    scored: ``n`` = 0."""
    rows = scores.profiles
    variants = [r["variant"] for r in rows]
    empty = np.zeros((0, scores.geometry.target_length, len(scores.identifiers)), np.float32)
    with open(path, "wb") as handle:
        np.savez_compressed(
            handle,
            ref=np.stack([r["ref"] for r in rows]) if rows else empty,
            alt=np.stack([r["alt"] for r in rows]) if rows else empty,
            id=np.array([v.id for v in variants]),
            chrom=np.array([v.chrom for v in variants]),
            pos=np.array([v.pos for v in variants], dtype=np.int64),
            ref_allele=np.array([v.ref for v in variants]),
            alt_allele=np.array([v.alt for v in variants]),
            status=np.array([v.status for v in variants]),
            target_start=np.array([r["target_start"] for r in rows], dtype=np.int64),
            bin_size=np.int64(scores.geometry.bin_size),
            tracks=np.array(scores.identifiers),
        )


def _run_ism(options: VariantOptions) -> VariantSummary:
    from gitool.predict.model import open_genome, prepare_model
    from gitool.runs import default_run

    began = time.perf_counter()
    # the genome is needed to parse the region and list the variants before scoring
    spec = prepare_model(options.model or default_run(), options.head, options.which, None)
    genome = open_genome(spec, options.genome)
    region = parse_region(options.ism, genome.sizes)
    codes = genome.codes(region.chrom, region.start, region.end)
    n_variants = 3 * int((codes < 4).sum())
    scores = _scores(options, ism_variants(genome, region), model=spec, genome=genome,
                     total=n_variants)  # fmt: skip
    outputs = Outputs(options.force, inputs=scores.inputs)
    out = outputs.file(options.out, "npz", field="out")
    png = outputs.file(_sibling(out, ".png"), "PNG", field="out")
    maps = IsmMaps(region, codes, scores.stats, scores.identifiers)
    for frame in scores:
        maps.add(frame)
    from gitool.variants.plots import ism_figure

    with committed_together(), staged_file(out) as tmp, staged_file(png) as png_tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                **maps.maps,
                tracks=np.array(scores.identifiers),
                chrom=np.array(region.chrom),
                start=np.int64(region.start),
                end=np.int64(region.end),
                sequence=codes,
            )
        ism_figure(maps, png_tmp)
    return _summary(options, scores, [out, png], began, [])


def _summary(options, scores: VariantScores, paths, began, missing) -> VariantSummary:
    if missing:
        warn(
            f"{len(missing)} variant ID(s) given to {opt('profiles')} were not scored (not "
            f"in the VCF, or skipped), so they have no profile: {', '.join(missing[:5])}"
        )
    unknown = [s for s in scores.counts if s not in STATUSES]
    assert not unknown, unknown
    return VariantSummary(
        paths=paths,
        counts=dict(scores.counts),
        head=scores.head,
        label=scores.label,
        seconds=time.perf_counter() - began,
        device=str(resolve_device(options.device)),
        n_tracks=len(scores.identifiers),
        stats=scores.stats,
        missing_profiles=missing,
    )
