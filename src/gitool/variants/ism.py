"""In-silico saturation mutagenesis: every base of a region changed to each of the three
other bases and scored as a VCF SNV would be (:mod:`gitool.variants.scoring`, the same
code path: each base gets its own window centred on it), giving an ``(L, 4)`` map per
track and statistic — zero at the reference base, NaN at N bases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gitool.data.genome import Genome
from gitool.data.windows import locus
from gitool.errors import InputError
from gitool.variants.vcf import Variant, default_id

MAX_ISM_BP = 20_000
"""The longest region ``--ism`` takes (4 forward passes per base)."""
_REGION = re.compile(r"^([^:\s]+):([\d,]+)-([\d,]+)$")


@dataclass(frozen=True)
class IsmRegion:
    """``chrom:start-end``, 0-based half-open (parsed from 1-based inclusive text)."""

    chrom: str
    start: int
    end: int

    def __str__(self) -> str:
        return locus(self.chrom, self.start, self.end)


def parse_region(text: str, sizes: dict[str, int]) -> IsmRegion:
    """``CHROM:START-END`` (1-based, both ends included, as samtools and genome browsers
    write it; commas allowed) → :class:`IsmRegion`.

    Raises:
        InputError: malformed text, unknown chromosome, a region past the chromosome end or
        longer than :data:`MAX_ISM_BP`.
    """
    match = _REGION.match(text.strip())
    if not match:
        raise InputError(
            f"{text!r} is not CHROM:START-END (1-based, inclusive), e.g. chrI:1001-1200",
            field="ism",
        )
    chrom = match.group(1)
    start, end = (int(match.group(i).replace(",", "")) for i in (2, 3))
    if chrom not in sizes:
        from gitool.data.windows import unknown_chrom_error

        error = unknown_chrom_error(text, chrom, sizes)
        raise InputError(str(error), field="ism")
    if end - start + 1 > MAX_ISM_BP and start >= 1:
        raise InputError(
            f"{text} is {end - start + 1:,} bp; ISM takes at most {MAX_ISM_BP:,} bp "
            "(4 forward passes per base): give a shorter region",
            field="ism",
        )
    if start < 1 or end < start or end > sizes[chrom]:
        raise InputError(
            f"{text}: give 1 ≤ START ≤ END ≤ {sizes[chrom]:,} (the length of {chrom})",
            field="ism",
        )
    return IsmRegion(chrom, start - 1, end)


def ism_variants(genome: Genome, region: IsmRegion) -> Iterator[Variant]:
    """The three SNVs of every base of ``region`` in order (position, then A, C, G, T);
    an N base gives none."""
    codes = genome.codes(region.chrom, region.start, region.end)
    for offset, code in enumerate(codes):
        if code > 3:
            continue
        ref = "ACGT"[code]
        pos = region.start + offset + 1
        for alt in "ACGT":
            if alt == ref:
                continue
            # REF is the genome's base inside the chromosome: nothing for classify() to check
            yield Variant(default_id(region.chrom, pos, ref, alt), region.chrom, pos, ref, alt)


class IsmMaps:
    """``{stat: float32 (tracks, L, 4)}`` filled from the score tables of
    :func:`ism_variants` as they stream in: zero at each reference base, NaN at N bases and
    at variants not scored."""

    def __init__(self, region: IsmRegion, codes: np.ndarray, stats, identifiers):
        self.region, self.codes = region, codes
        self.stats, self.identifiers = tuple(stats), list(identifiers)
        known = np.flatnonzero(codes < 4)
        self.maps = {}
        for stat in self.stats:
            grid = np.full((len(identifiers), len(codes), 4), np.nan, dtype=np.float32)
            grid[:, known, codes[known]] = 0.0
            self.maps[stat] = grid

    def add(self, frame) -> None:
        """Put one score table's values in place (by each row's ``pos`` and ``alt``)."""
        offsets = frame["pos"].to_numpy() - 1 - self.region.start
        alts = frame["alt"].map("ACGT".index).to_numpy()
        for stat, grid in self.maps.items():
            values = frame[[f"{stat}:{t}" for t in self.identifiers]].to_numpy(np.float32)
            grid[:, offsets, alts] = values.T
