"""Checking bigWig files before any coverage is read, without trusting them.

libBigWig (through pyBigWig) can crash the process on a damaged file: its ``header()`` call
segfaults on a bigWig that stores NaN, and a corrupt header or data block can do the same.
So every bigWig is opened in a child process (:func:`check_bigwigs`); a child that dies
names the file it was reading, and the build stops with one line instead of a segfault.
The header's total summary (count, minimum, maximum) is parsed here, in Python.

What a Poisson model can use: counts or coverage ≥ 0 after ``scale``, finite everywhere.
Negative values (a minus-strand track stored negative, or ``scale -1`` on positive data)
and ±inf are refused, naming the track, the first bad position and the fix; NaN reads as 0.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import struct
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import pyBigWig

from gitool.data.genome import genome_spelling
from gitool.errors import InputError, opt

_MAGIC = 0x888FFC26
_SCAN_BP = 1 << 22  # bp per values() call when looking for the first bad position


@dataclass(frozen=True)
class Summary:
    """A bigWig header's total summary: bases with data, minimum and maximum value."""

    valid: int
    minimum: float
    maximum: float


@dataclass(frozen=True)
class BigWigFacts:
    """What the build needs to know of one bigWig, found before any coverage is read."""

    nonnegative: bool  # every value on the kept chromosomes is >= 0 (a faster NaN -> 0)
    empty: bool  # no data at all (valid: its targets are all 0)


def read_summary(path: str) -> Summary | None:
    """The exact total summary of a bigWig, parsed from its header (pyBigWig's ``header()``
    rounds ``minVal`` towards zero and segfaults on files holding NaN). None when the file
    has none (very old writers).

    Raises:
        InputError: the file is not a bigWig (wrong magic) or its summary lies past its end.
    """
    with open(path, "rb") as handle:
        head = handle.read(64)
        magic = struct.unpack("<I", head[:4])[0] if len(head) >= 4 else 0
        order = "<" if magic == _MAGIC else ">"
        if len(head) < 64 or struct.unpack(order + "I", head[:4])[0] != _MAGIC:
            raise InputError(f"{path} is not a bigWig file (no bigWig header)")
        offset = struct.unpack(order + "Q", head[44:52])[0]
        if offset == 0:
            return None
        handle.seek(offset)
        summary = handle.read(40)  # validCount (u64), minVal, maxVal, sumData, sumSquares
    if len(summary) < 40:
        raise InputError(f"{path} is truncated: its header points past the end of the file")
    valid, minimum, maximum = struct.unpack(order + "Qdd", summary[:24])
    if 0 < maximum <= sys.float_info.min:  # libBigWig starts the maximum at DBL_MIN, so
        maximum = 0.0  # a file of negative values only says DBL_MIN; it means "<= 0"
    return Summary(valid, minimum, maximum)


def bigwig_minimum(path: str) -> float | None:
    """The exact minimum value of a bigWig (0 when it has no data; None without summary)."""
    summary = read_summary(path)
    if summary is None:
        return None
    return summary.minimum if summary.valid else 0.0


def check_bigwigs(tracks, sizes: dict[str, int], kept: list[str]) -> list[BigWigFacts]:
    """Check every track's bigWig against the genome in a child process (see the module
    docstring); returns what :func:`bigwig_facts` found, one per track.

    Raises:
        InputError: the first bad file (unreadable, damaged so that reading it crashed,
        wrong chromosomes, negative or infinite values), naming the track.
    """
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(1, context, initializer=silence_stderr) as pool:
        futures = [pool.submit(_facts_or_error, t, sizes, kept) for t in tracks]
        facts = []
        for track, future in zip(tracks, futures, strict=True):
            try:
                found = future.result()
            except BrokenProcessPool:
                raise crashed(track) from None
            if isinstance(found, tuple):  # an InputError, sent as its template and field
                error = InputError(found[0])
                error.field = found[1]
                raise error
            facts.append(found)
    return facts


def _facts_or_error(track, sizes: dict[str, int], kept: list[str]):
    """:func:`bigwig_facts`, or an InputError's template and field (a pickled InputError
    would lose the option references of its message)."""
    try:
        return bigwig_facts(track, sizes, kept)
    except InputError as err:
        return err.template, err.field


def crashed(track) -> InputError:
    """The error for a bigWig whose reading killed the reader process."""
    return InputError(
        f"track {track.identifier!r}: reading {track.file} crashed the bigWig reader; the "
        "file is damaged — remake or re-download it"
    )


def silence_stderr() -> None:
    """Send this (child) process's C-level stderr to /dev/null: libBigWig prints its own
    lines for bad files, and the parent reports the error as one line."""
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def bigwig_facts(track, sizes: dict[str, int], kept: list[str]) -> BigWigFacts:
    """Open one bigWig and check it against the genome and the Poisson contract (runs in
    the checking child process; see :func:`check_bigwigs`)."""
    if os.path.isdir(track.file):
        raise InputError(
            f"track {track.identifier!r}: {track.file} is a folder, not a bigWig file; "
            "give the .bw file's path in the tracks file"
        )
    try:
        summary = read_summary(track.file)
    except InputError:
        summary = None
        bw = None
    else:
        bw = _open(track.file)
    if bw is None:
        raise InputError(
            f"track {track.identifier!r}: {track.file} is not a readable bigWig file; "
            "check the path points at a .bw (not bedGraph/bigBed) and is not truncated"
        )
    try:
        _check_chroms(track, bw.chroms(), sizes, kept)
        _check_finite(track, summary)
        nonnegative = _check_sign(track, bw, summary, kept)
    finally:
        bw.close()
    return BigWigFacts(nonnegative, empty=summary is not None and summary.valid == 0)


def _open(path: str):
    try:
        bw = pyBigWig.open(path)
    except Exception:  # pyBigWig raises RuntimeError for unreadable files
        return None
    if bw is None or not bw.isBigWig():
        return None
    return bw


def _check_chroms(track, chroms: dict[str, int], sizes: dict[str, int], kept: list[str]) -> None:
    """Every kept chromosome must be in the bigWig with the genome's length."""
    for name in kept:
        if name in chroms:
            if chroms[name] != sizes[name]:
                raise InputError(
                    f"track {track.identifier!r}: {track.file} says {name} is {chroms[name]:,} bp "
                    f"but the genome has {sizes[name]:,} bp; use bigWigs made on this assembly"
                )
            continue
        alt = genome_spelling(name, chroms)  # the bigWig's spelling of the genome's name
        if alt is not None:
            raise InputError(
                f"track {track.identifier!r}: {track.file} names chromosome {alt!r} where the "
                f"genome has {name!r}; use one spelling on both sides (e.g. rename the FASTA "
                f"records or remake the bigWig), or pick chromosomes with {opt('chroms')}"
            )
        raise InputError(
            f"track {track.identifier!r}: {track.file} has no chromosome {name!r} of the "
            f"genome (it has {', '.join(list(chroms)[:5])}...); use bigWigs made on this "
            f"assembly, or leave the chromosome out with {opt('chroms')}"
        )


def _check_finite(track, summary: Summary | None) -> None:
    if summary is None or not summary.valid:
        return
    for value in (summary.minimum, summary.maximum):
        if math.isinf(value):
            raise InputError(
                f"track {track.identifier!r}: {track.file} holds {value} values; coverage "
                "must be finite — remake the bigWig (NaN is read as 0, infinity is not)"
            )


def _check_sign(track, bw, summary: Summary | None, kept: list[str]) -> bool:
    """Refuse values that are negative after ``scale``; True when every value on the kept
    chromosomes is >= 0. Without a summary, the build checks each bin as it reads."""
    if summary is None:
        return False
    if not summary.valid:
        return True
    wrong = summary.minimum < 0 if track.scale > 0 else summary.maximum > 0
    if not wrong:
        return summary.minimum >= 0
    found = _first_wrong_sign(bw, kept, negative=track.scale > 0)
    if found is None:  # only on chromosomes the build leaves out
        return track.scale > 0
    chrom, position, value = found
    raise negative_error(track, chrom, position, value, all_negative=summary.maximum <= 0)


def negative_error(track, chrom: str, position: int, value: float, all_negative: bool):
    """Values that are negative after ``scale``: the error, with the fix."""
    where = f"{chrom}:{position + 1:,}"
    if track.scale < 0:
        return InputError(
            f"track {track.identifier!r}: {track.file} has positive values (first at {where}, "
            f"{value:g}) that scale {track.scale:g} turns negative, and a Poisson model needs "
            "coverage >= 0; give it a positive scale in the tracks file"
        )
    fix = (
        "it looks like a minus-strand track stored negative: set its scale to -1 in the tracks file"
        if all_negative
        else "remake the bigWig with raw coverage (not a log ratio or a difference)"
    )
    return InputError(
        f"track {track.identifier!r}: {track.file} has negative values (first at {where}, "
        f"{value:g}) and a Poisson model needs coverage >= 0; {fix}"
    )


def _first_wrong_sign(bw, kept: list[str], negative: bool) -> tuple[str, int, float] | None:
    chroms = bw.chroms()
    for chrom in kept:
        for start in range(0, chroms[chrom], _SCAN_BP):
            end = min(start + _SCAN_BP, chroms[chrom])
            values = bw.values(chrom, start, end, numpy=True)
            bad = np.flatnonzero(values < 0 if negative else values > 0)
            if len(bad):
                return chrom, start + int(bad[0]), float(values[bad[0]])
    return None
