"""Reference and alternate model inputs of a variant, and how their bins line up.

**The window.** A variant whose REF starts at 0-based ``p`` gets the target start
``ts = p − target_span // 2``: the variant sits at the middle of the target span (bin
``target_length // 2``), and the input is that of a ``gitool predict`` window with target
start ``ts`` (:func:`gitool.predict.tiling.sequence_interval`, the same shifts and the same
swapped contexts for the reverse complement). So an SNV scored here, and every base of an
ISM map, is predicted exactly as a genome window would be.

**The alleles.** The alleles replace the genome's bases ``[p, p + n)``: ``n = len(REF)``
(:func:`replaced_bases`). The reference input is the genome over that interval with REF in
place of them (the genome's own bases, unless a REF that differs from them was allowed);
the alternate input is the same with ALT in their place: identical up to ``p``, then ALT,
then the genome after those ``n`` bases until the input is full. Both inputs therefore
start at the same genome base and have the model's length. A REF that differs from the
genome where the genome carries ALT (a record with REF and ALT swapped) replaces
``n = len(ALT)`` bases instead, so that the alternate input is the genome and the reference
input is what the unswapped record's alternate is: swapping REF and ALT swaps the two
inputs exactly, indels included.

**Indels: how the bins line up.** Bins upstream of the variant (genome orientation; also
under ``--rc``, where the input is built this way and then reverse-complemented) cover the
same genome bases in the reference and alternate predictions. Downstream of it the
alternate's bins are displaced by ``len(ALT) − len(REF)`` bp: an insertion pushes the
downstream genome out of the window, a deletion pulls more of it in. Scores compare bin
``j`` with bin ``j`` (as Basenji's SAD does), so an indel that changes the length by a bin
or more would compare different loci downstream: such variants are not scored
(:data:`~gitool.variants.vcf.TOO_LONG`), nor are alleles longer than a quarter of the
input.
"""

from __future__ import annotations

import numpy as np

from gitool.data.genome import encode, reverse_complement
from gitool.data.windows import Geometry
from gitool.predict.tiling import SequenceReader, sequence_interval
from gitool.variants.vcf import OK, PADDED, REF_MISMATCH, TOO_LONG, Variant


def target_start(start: int, geometry: Geometry) -> int:
    """``ts`` of the window of a variant whose REF starts at 0-based ``start``."""
    return start - geometry.target_span // 2


def replaced_bases(variant: Variant, reader: SequenceReader) -> int:
    """How many genome bases from ``variant.start`` the alleles replace: ``len(REF)``, or
    ``len(ALT)`` where REF differs from the genome and the genome carries ALT there (the
    record's REF and ALT swapped; see the module docstring)."""
    n = len(variant.ref)
    if variant.status != REF_MISMATCH or len(variant.alt) == n:
        return n
    genome = reader.codes(variant.chrom, variant.start, variant.start + len(variant.alt))
    return len(variant.alt) if np.array_equal(genome, encode(variant.alt)) else n


def window_status(
    variant: Variant, geometry: Geometry, sizes: dict[str, int], members, replaced: int
) -> str:
    """:data:`TOO_LONG`, :data:`PADDED` (an input of one of the ensemble ``members``,
    ``(shift, rc)`` pairs, runs off its chromosome) or :data:`OK` for a variant the VCF and
    genome let through, whose alleles replace ``replaced`` genome bases."""
    longest = max(len(variant.ref), len(variant.alt))
    if longest > geometry.seq_length // 4 or abs(len(variant.alt) - len(variant.ref)) >= (
        geometry.bin_size
    ):
        return TOO_LONG
    ts = target_start(variant.start, geometry)
    size = sizes[variant.chrom]
    # more genome read downstream where an allele is shorter than the bases it replaces
    extra = max(replaced - min(len(variant.ref), len(variant.alt)), 0)
    for shift, rc in members:
        lo, hi = sequence_interval(ts, geometry, shift, rc)
        if lo < 0 or hi + extra > size:
            return PADDED
    return OK


def allele_inputs(
    variant: Variant,
    geometry: Geometry,
    reader: SequenceReader,
    shift: int,
    rc: bool,
    replaced: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 codes ``(seq_length,)`` of the reference and alternate inputs for one ensemble
    member (``shift`` bp, reverse complement when ``rc``), the alleles in place of
    ``replaced`` genome bases (:func:`replaced_bases` when None); see the module docstring."""
    if replaced is None:
        replaced = replaced_bases(variant, reader)
    ts = target_start(variant.start, geometry)
    lo, hi = sequence_interval(ts, geometry, shift, rc)
    k = variant.start - lo  # the variant's offset in the input
    upstream = reader.codes(variant.chrom, lo, variant.start)
    after = variant.start + replaced
    inputs = []
    for allele in (variant.ref, variant.alt):
        codes = np.empty(hi - lo, dtype=upstream.dtype)
        codes[:k] = upstream
        allele = encode(allele)[: len(codes) - k]
        codes[k : k + len(allele)] = allele
        rest = len(codes) - k - len(allele)
        codes[k + len(allele) :] = reader.codes(variant.chrom, after, after + rest)
        inputs.append(reverse_complement(codes) if rc else codes)
    return inputs[0], inputs[1]
