"""Reference and alternate model inputs of a variant, and how their bins line up.

**The window.** A variant whose REF starts at 0-based ``p`` gets the target start
``ts = p − target_span // 2``: the variant sits at the middle of the target span (bin
``target_length // 2``), and the input is that of a ``gitool predict`` window with target
start ``ts`` (:func:`gitool.predict.tiling.sequence_interval`, the same shifts and the same
swapped contexts for the reverse complement). So an SNV scored here, and every base of an
ISM map, is predicted exactly as a genome window would be.

**The alleles.** The reference input is the genome over that interval with REF in place
(the genome's own bases, unless a REF that differs from them was allowed). The alternate
input is the same interval with REF replaced by ALT: identical up to ``p``, then ALT, then
the genome after REF until the input is full. Both inputs therefore start at the same
genome base and have the model's length, and swapping REF and ALT of a substitution swaps
the two inputs.

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
from gitool.variants.vcf import OK, PADDED, TOO_LONG, Variant


def target_start(start: int, geometry: Geometry) -> int:
    """``ts`` of the window of a variant whose REF starts at 0-based ``start``."""
    return start - geometry.target_span // 2


def window_status(variant: Variant, geometry: Geometry, sizes: dict[str, int], shifts) -> str:
    """:data:`TOO_LONG`, :data:`PADDED` (an input runs off its chromosome) or :data:`OK`
    for a variant the VCF and genome let through."""
    longest = max(len(variant.ref), len(variant.alt))
    if longest > geometry.seq_length // 4 or abs(len(variant.alt) - len(variant.ref)) >= (
        geometry.bin_size
    ):
        return TOO_LONG
    ts = target_start(variant.start, geometry)
    size = sizes[variant.chrom]
    deletion = max(len(variant.ref) - len(variant.alt), 0)  # more genome read downstream
    for shift in shifts:
        for rc in (False, True):
            lo, hi = sequence_interval(ts, geometry, shift, rc)
            if lo < 0 or hi + deletion > size:
                return PADDED
    return OK


def allele_inputs(
    variant: Variant, geometry: Geometry, reader: SequenceReader, shift: int, rc: bool
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 codes ``(seq_length,)`` of the reference and alternate inputs for one ensemble
    member (``shift`` bp, reverse complement when ``rc``); see the module docstring."""
    ts = target_start(variant.start, geometry)
    lo, hi = sequence_interval(ts, geometry, shift, rc)
    ref = reader.codes(variant.chrom, lo, hi).copy()
    k = variant.start - lo  # the variant's offset in the input
    ref[k : k + len(variant.ref)] = encode(variant.ref)[: len(ref) - k]  # the genome's, unless
    alt = np.empty_like(ref)  # a mismatch was allowed
    alt[:k] = ref[:k]
    allele = encode(variant.alt)[: len(alt) - k]
    alt[k : k + len(allele)] = allele
    after = variant.start + len(variant.ref)
    rest = len(alt) - k - len(allele)
    alt[k + len(allele) :] = reader.codes(variant.chrom, after, after + rest)
    if rc:
        return reverse_complement(ref), reverse_complement(alt)
    return ref, alt
