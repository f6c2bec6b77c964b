"""``gitool variants``: scores checked against a model whose output is known from the
sequence (base counts per bin), so every allele construction, indel alignment, strand and
edge case has an exact expected value; symmetry, batch-size independence, ISM against VCF
scores, and every status and bad-input path through the command line."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest

from gitool.data.genome import Genome
from gitool.data.tracks import Track, untransform
from gitool.data.windows import Geometry
from gitool.errors import InputError
from gitool.variants.scoring import iter_variant_scores, score_variants, variant_stats

from fixture_models import BASES, BaseCounts, CountsConfig, counts_manifest, make_run, tiny_manifest
from helpers import assert_input_error, run_cli

GEOMETRY = Geometry(400, 8, 25)
HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def write_vcf(path: Path, rows: list[tuple], contigs: dict | None = None) -> Path:
    """rows: (chrom, pos, id, ref, alt)."""
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length={n}>" for c, n in (contigs or {}).items()]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    lines += ["\t".join(map(str, (c, p, i, r, a, ".", ".", "."))) for c, p, i, r, a in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def genome_seq(tiny, chrom: str) -> str:
    genome = Genome(tiny["genome"])
    try:
        return "".join("ACGTN"[c] for c in genome.codes(chrom, 0, genome.sizes[chrom]))
    finally:
        genome.close()


def target_counts(seq: str, start: int) -> np.ndarray:
    """Counts of A, C, G, T in the 200-bp target span of an input starting at ``start`` of
    ``seq`` (N beyond the ends), computed from the text."""
    lo = start + GEOMETRY.context_left
    span = "".join(seq[i] if 0 <= i < len(seq) else "N" for i in range(lo, lo + 200))
    return np.array([span.count(b) for b in BASES], dtype=np.float32)


def expected_sum(seq: str, pos: int, ref: str, alt: str) -> np.ndarray:
    """Σalt − Σref per base track, built from the sequence text alone."""
    p = pos - 1
    ts = p - GEOMETRY.target_span // 2
    lo = ts - GEOMETRY.context_left
    ref_input = seq[max(lo, 0) : p] if lo >= 0 else "N" * -lo + seq[:p]
    tail = seq[p + len(ref) :] + "N" * 1000
    ref_seq = ref_input + ref + seq[p + len(ref) :] + "N" * 1000
    alt_seq = ref_input + alt + tail
    ref_counts = target_counts(ref_seq[:400], 0)
    alt_counts = target_counts(alt_seq[:400], 0)
    return alt_counts - ref_counts


def score(tiny, variants, **options):
    options = {"manifest": counts_manifest(), "device": "cpu", "batch_size": 8, **options}
    return score_variants(BaseCounts(CountsConfig()), tiny["genome"], variants, **options)


def sums(frame: pd.DataFrame, stat: str = "sum") -> np.ndarray:
    return frame[[f"{stat}:{b}" for b in BASES]].to_numpy()


# --------------------------------------------------------------------------- values


def test_snv_scores_equal_the_base_counts_they_change(tiny):
    seq = genome_seq(tiny, "chr1")
    pos = 3001
    ref = seq[pos - 1]
    alt = next(b for b in BASES if b != ref)
    frame = score(tiny, [("chr1", pos, ref, alt)], stats="sum,log2fc,max_abs,l2")
    expected = np.zeros(4)
    expected[BASES.index(alt)], expected[BASES.index(ref)] = 1, -1
    assert frame["status"].tolist() == ["ok"]
    np.testing.assert_array_equal(sums(frame), [expected])
    np.testing.assert_array_equal(sums(frame, "max_abs"), [np.abs(expected)])
    np.testing.assert_array_equal(sums(frame, "l2"), [np.abs(expected)])
    ref_counts = target_counts(seq, pos - 1 - 100 - GEOMETRY.context_left)
    log2fc = np.log2((ref_counts + expected + 1) / (ref_counts + 1))
    np.testing.assert_allclose(sums(frame, "log2fc"), [log2fc], rtol=1e-5)


def test_swapping_ref_and_alt_negates_sum_and_log2fc(tiny):
    seq = genome_seq(tiny, "chr1")
    rows, swapped = [], []
    for pos in (1500, 2000, 2501):
        ref = seq[pos - 1 : pos + 1]  # a two-base substitution
        alt = "".join(BASES[(BASES.index(b) + 1) % 4] for b in ref)
        rows.append(("chr1", pos, ref, alt))
        swapped.append(("chr1", pos, alt, ref))
    stats = "sum,log2fc,max_abs,l2"
    forward = score(tiny, rows, stats=stats)
    backward = score(tiny, swapped, stats=stats, allow_ref_mismatch=True)
    assert set(backward["status"]) == {"ref_mismatch"}  # scored because allowed
    for stat, sign in (("sum", -1), ("log2fc", -1), ("max_abs", 1), ("l2", 1)):
        np.testing.assert_array_equal(sums(backward, stat), sign * sums(forward, stat))
    assert np.abs(sums(forward)).sum() > 0

    # indels too: a swapped insertion's REF (longer than the genome's ALT) goes in place of
    # the bases ALT takes up, not over as many genome bases as REF has; on both strands
    extra = next(b for b in BASES if b != seq[1801])  # so that the swapped REF is a mismatch
    indels = [
        ("chr1", 1700, seq[1699], seq[1699] + "GATT"),
        ("chr1", 1800, seq[1799:1801], seq[1799:1801] + extra),
    ]
    swapped = [(c, p, alt, ref) for c, p, ref, alt in indels]
    for rc in (False, True):
        forward = score(tiny, indels, stats=stats, rc=rc)
        backward = score(tiny, swapped, stats=stats, rc=rc, allow_ref_mismatch=True)
        assert set(backward["status"]) == {"ref_mismatch"} and set(forward["status"]) == {"ok"}
        for stat, sign in (("sum", -1), ("log2fc", -1), ("max_abs", 1), ("l2", 1)):
            np.testing.assert_array_equal(sums(backward, stat), sign * sums(forward, stat))
        assert (np.abs(sums(forward)).sum(1) > 0).all()

    # two records at one position with different REFs do not share a reference input
    g = seq[2999]
    x, y = [b for b in BASES if b != g][:2]
    frame = score(tiny, [("chr1", 3000, g, x), ("chr1", 3000, x, y)], allow_ref_mismatch=True)
    expected = np.zeros((2, 4))
    expected[0, BASES.index(x)], expected[0, BASES.index(g)] = 1, -1
    expected[1, BASES.index(y)], expected[1, BASES.index(x)] = 1, -1
    np.testing.assert_array_equal(sums(frame), expected)


def test_alt_equal_to_ref_scores_zero_and_batch_size_does_not_matter(tiny):
    seq = genome_seq(tiny, "chr1")
    rows = [("chr1", p, seq[p - 1 : p + 2], seq[p - 1 : p + 2]) for p in range(1000, 1040, 3)]
    frame = score(tiny, rows, stats="sum,max_abs,l2")
    assert (frame[[c for c in frame if ":" in c]].to_numpy() == 0).all()

    snvs = [("chr1", p, seq[p - 1], "ACGT"[(p * 7) % 4]) for p in range(1000, 1100, 7)]
    snvs = [r for r in snvs if r[2] != r[3]]
    a = score(tiny, snvs, batch_size=8, rc=True, shifts="0,1")  # one variant per batch
    b = score(tiny, snvs, batch_size=64, rc=True, shifts="0,1")
    np.testing.assert_allclose(sums(a), sums(b), atol=1e-6)
    with pytest.raises(InputError, match="batch_size 7 is too small for 4 ensemble member"):
        score(tiny, snvs, batch_size=7, rc=True, shifts="0,1")


def test_bf16_on_the_cpu_says_it_scores_in_float32(tiny, capsys):
    """--bf16 without a GPU silently ran float32 (the same scores, no word of it)."""
    seq = genome_seq(tiny, "chr1")
    rows = [("chr1", 1000, seq[999], "A" if seq[999] != "A" else "C")]
    np.testing.assert_array_equal(sums(score(tiny, rows, bf16=True)), sums(score(tiny, rows)))
    assert "bf16 applies on a CUDA GPU only: scoring in float32 on cpu" in capsys.readouterr().err


def test_indels_on_both_strands_match_the_sequence_built_by_hand(tiny):
    seq = genome_seq(tiny, "chr1")
    rows = []
    for pos in (2000, 2700, 3300):
        rows.append(("chr1", pos, seq[pos - 1 : pos + 4], seq[pos - 1]))  # 4-bp deletion
        rows.append(("chr1", pos + 50, seq[pos + 49], seq[pos + 49] + "GATTACA"))  # insertion
    forward = score(tiny, rows)
    both = score(tiny, rows, rc=True)  # base counts are strand-symmetric through the pairs
    for i, (_, pos, ref, alt) in enumerate(rows):
        expected = expected_sum(seq, pos, ref, alt)
        np.testing.assert_array_equal(sums(forward)[i], expected)
        np.testing.assert_allclose(sums(both)[i], expected, atol=1e-6)
    assert np.abs(sums(forward)).sum() > 0


def test_variants_near_chromosome_ends_are_padded_with_n_and_flagged(tiny):
    seq = genome_seq(tiny, "chr3")
    rows = [("chr3", 3, seq[2], "A" if seq[2] != "A" else "C")]
    rows.append(("chr3", len(seq) - 1, seq[-2], "G" if seq[-2] != "G" else "T"))
    frame = score(tiny, rows)
    assert frame["status"].tolist() == ["padded", "padded"]
    for i, (_, pos, ref, alt) in enumerate(rows):
        np.testing.assert_array_equal(sums(frame)[i], expected_sum(seq, pos, ref, alt))


def test_statuses_of_what_cannot_be_scored(tiny):
    seq = genome_seq(tiny, "chr1")
    rows = [
        ("chr1", 100, seq[99], "<DEL>"),
        ("chr1", 150, seq[149], f"{seq[149]}[chr2:100["),  # a breakend, as written
        ("chr1", 200, seq[199], "."),
        ("chr1", 300, seq[299], "R"),
        ("chr1", 400, "A" if seq[399] != "A" else "C", "T"),
        ("chr1", 500, seq[499 : 499 + 20], seq[499]),  # changes the length by a bin or more
        ("chr1", 5999, seq[5998:6000] + "A", "A"),  # REF runs past the chromosome end
        ("scaffold9", 10, "A", "C"),
    ]
    frame = score(tiny, rows)
    assert frame["status"].tolist() == [
        "symbolic", "symbolic", "no_alt", "non_acgt", "ref_mismatch", "too_long",
        "outside_chrom", "unknown_chrom",
    ]  # fmt: skip
    assert frame["alt"][1] == f"{seq[149]}[chr2:100[" and frame["id"][1].endswith("[chr2:100[")
    assert frame[[c for c in frame if ":" in c]].isna().all().all()


def test_variant_stats_by_formula():
    ref = np.abs(np.random.default_rng(0).normal(size=(3, 5, 2))).astype(np.float32)
    alt = ref + np.random.default_rng(1).normal(size=ref.shape).astype(np.float32)
    import torch

    out = variant_stats(torch.from_numpy(ref), torch.from_numpy(alt), STATS_ALL, 1.0).numpy()
    d = alt - ref
    np.testing.assert_allclose(out[:, 0], alt.sum(1) - ref.sum(1), rtol=1e-5)
    with np.errstate(invalid="ignore"):
        log2fc = np.log2((alt.sum(1) + 1) / (ref.sum(1) + 1))
    np.testing.assert_allclose(out[:, 1], log2fc, rtol=1e-5)
    np.testing.assert_allclose(out[:, 2], np.abs(d).max(1), rtol=1e-6)
    np.testing.assert_allclose(out[:, 3], np.sqrt((d**2).sum(1)), rtol=1e-5)


STATS_ALL = ("sum", "log2fc", "max_abs", "l2")


def test_sum_keeps_a_small_effect_on_large_predictions():
    import torch

    rng = np.random.default_rng(2)
    ref = (rng.random((4, 896, 3)) * 100).astype(np.float32)  # Σ ≈ 45,000 per track
    alt = ref.copy()
    alt[:, 448] += np.float32(1e-3)  # one bin moves by 0.001
    exact = (alt.astype(np.float64) - ref.astype(np.float64)).sum(1)
    out = variant_stats(torch.from_numpy(ref), torch.from_numpy(alt), ("sum", "log2fc"), 1.0)
    np.testing.assert_allclose(out[:, 0].numpy(), exact, rtol=1e-5)
    with np.errstate(invalid="ignore"):
        log2fc = np.log2((alt.astype(np.float64).sum(1) + 1) / (ref.astype(np.float64).sum(1) + 1))
    np.testing.assert_allclose(out[:, 1].numpy(), log2fc, rtol=1e-4)
    assert out.dtype == torch.float32


def test_only_the_ensembles_own_inputs_decide_padded():
    from gitool.predict.tiling import sequence_interval
    from gitool.variants.alleles import target_start, window_status
    from gitool.variants.vcf import Variant

    geometry = Geometry(401, 8, 25)  # the contexts differ by a base: rc swaps them
    # the variant whose forward input starts at the chromosome's first base
    start = next(
        p
        for p in range(1000)
        if sequence_interval(target_start(p, geometry), geometry, 0, False)[0] == 0
    )
    variant = Variant("x", "chr1", start + 1, "A", "C")
    sizes = {"chr1": 10_000}
    assert window_status(variant, geometry, sizes, [(0, False)], 1) == "ok"
    assert window_status(variant, geometry, sizes, [(0, False), (0, True)], 1) == "padded"


# --------------------------------------------------------------------------- the VCF


def test_multi_allelic_records_split_and_bgzip_vcf_read(tiny):
    seq = genome_seq(tiny, "chr1")
    ref = seq[1999]
    alts = [b for b in BASES if b != ref]
    path = write_vcf(tiny["dir"] / "calls.vcf", [("chr1", 2000, "rs1", ref, ",".join(alts))])
    pysam.tabix_compress(str(path), str(path) + ".gz")
    frame = score(tiny, str(path) + ".gz")
    assert frame["id"].tolist() == ["rs1"] * 3
    assert frame["alt"].tolist() == alts
    for i, alt in enumerate(alts):
        np.testing.assert_array_equal(sums(frame)[i], expected_sum(seq, 2000, ref, alt))


def test_command_writes_tsv_profiles_and_summary(tiny, capsys):
    _, folder = make_run(tiny)
    seq = genome_seq(tiny, "chr1")
    rows = [
        ("chr1", 2000, "rs1", seq[1999], "A" if seq[1999] != "A" else "C"),
        ("chr1", 2100, ".", seq[2099], "<INS>"),
        ("chr1", 2200, "rs3", "A" if seq[2199] != "A" else "C", "T"),
    ]
    vcf = write_vcf(tiny["dir"] / "calls.vcf", rows)
    out = tiny["dir"] / "scores.tsv"
    args = ["variants", str(vcf), "-m", str(folder), "-g", str(tiny["genome"]), "-o", str(out)]
    code, _, err = run_cli([*args, "--stats", "sum,l2", "--profiles", "rs1"], capsys)
    assert code == 0, err
    table = pd.read_csv(out, sep="\t")
    tracks = ["plus", "minus", "dense", "sparse"]
    assert list(table.columns) == ["id", "chrom", "pos", "ref", "alt", "status"] + [
        f"{s}:{t}" for s in ("sum", "l2") for t in tracks
    ]
    assert table["status"].tolist() == ["ok", "symbolic", "ref_mismatch"]
    assert table["id"].tolist() == ["rs1", f"chr1:2100:{seq[2099]}:<INS>", "rs3"]
    assert table.iloc[0, 6:].notna().all() and table.iloc[1:, 6:].isna().all().all()
    text = " ".join(err.split())
    assert "scored 1 of 3 variants; skipped: symbolic 1, ref_mismatch 1" in text or (
        "scored 1 of 3 variants; skipped: ref_mismatch 1, symbolic 1" in text
    )
    profiles = np.load(tiny["dir"] / "scores.profiles.npz")
    assert profiles["ref"].shape == profiles["alt"].shape == (1, 25, 4)
    assert profiles["id"].tolist() == ["rs1"]
    np.testing.assert_allclose(
        (profiles["alt"] - profiles["ref"]).sum(1)[0], table.iloc[0, 6:10].to_numpy(float),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip

    # long form: one row per variant × track
    long_out = tiny["dir"] / "long.tsv"
    code, _, err = run_cli([*args[:-1], str(long_out), "--long", "--stats", "sum,l2"], capsys)
    assert code == 0, err
    long = pd.read_csv(long_out, sep="\t")
    assert list(long.columns) == [
        "id",
        "chrom",
        "pos",
        "ref",
        "alt",
        "status",
        "track",
        "sum",
        "l2",
    ]
    assert len(long) == 12 and long["track"].tolist()[:4] == tracks
    np.testing.assert_allclose(long["sum"][:4], table.iloc[0, 6:10].to_numpy(float), rtol=1e-5)

    # an existing output is refused; the VCF itself never written over, even with --force
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, "already exists", "--force")
    code, _, err = run_cli([*args[:-1], str(vcf), "--force"], capsys)
    assert_input_error(code, err, "inputs")
    assert vcf.read_text().startswith("##fileformat")


def test_bad_vcfs_give_one_line_and_no_output(tiny, capsys):
    _, folder = make_run(tiny)
    out = tiny["dir"] / "scores.tsv"

    def call(vcf: Path):
        args = ["variants", str(vcf), "-m", str(folder), "-g", str(tiny["genome"]), "-o", str(out)]
        return run_cli(args, capsys)

    seq = genome_seq(tiny, "chr1")
    renamed = write_vcf(tiny["dir"] / "renamed.vcf", [("1", 2000, ".", seq[1999], "A")])
    code, _, err = call(renamed)
    assert_input_error(code, err, "'1'", "'chr1'", "bcftools annotate --rename-chrs")
    # another case (TAIR's Chr1 against chr1) was "skipped: unknown_chrom", exit 0
    renamed = write_vcf(tiny["dir"] / "case.vcf", [("Chr1", 2000, ".", seq[1999], "A")])
    code, _, err = call(renamed)
    assert_input_error(code, err, "'Chr1'", "names it 'chr1'", "'Chr1 chr1'")
    # a VCF of another assembly altogether: a table of NA, exit 0; one unknown among known
    # chromosomes (a scaffold) is still a status
    other = write_vcf(tiny["dir"] / "other.vcf", [("chrIV", 20, ".", "A", "C")] * 2)
    code, _, err = call(other)  # found while scoring: after the status lines of the work
    last = " ".join(err.split()).rsplit("error: ", 1)[-1]
    assert code == 2 and "none of its chromosomes is in the genome" in last and "chrIV" in last
    assert not out.exists()
    mixed = write_vcf(tiny["dir"] / "mixed.vcf",
                      [("chrIV", 20, ".", "A", "C"), ("chr1", 2000, ".", seq[1999], "A")])  # fmt: skip
    code, _, err = call(mixed)
    assert code == 0, err
    assert pd.read_csv(out, sep="\t")["status"].tolist() == ["unknown_chrom", "ok"]
    out.unlink()

    plain = tiny["dir"] / "plain.vcf.gz"
    with gzip.open(plain, "wt") as handle:
        handle.write(HEADER + f"chr1\t2000\t.\t{seq[1999]}\tA\t.\t.\t.\n")
    code, _, err = call(plain)
    assert_input_error(
        code, err, "not bgzip-compressed", f"bgzip > {tiny['dir']}/plain.bgz.vcf.gz`"
    )
    assert "VARIANTS variants" not in err

    rows = [("chr1", 2000 + i, ".", seq[1999 + i], "A") for i in range(3)]
    broken = write_vcf(tiny["dir"] / "broken.vcf", rows)
    good = broken.read_text()
    broken.write_text(good + "chr1\tx2\t.\tA\tC\t.\t.\t.\n")
    code, _, err = call(broken)  # htslib says "truncated file"
    assert_input_error(
        code, err, "broken.vcf line 6: malformed VCF record (POS 'x2' is not a whole"
    )
    broken.write_text(good + "chr1 2100 . A C . . .\n")
    code, _, err = call(broken)
    assert_input_error(code, err, "line 6", "1 tab-separated field(s)", "a VCF uses tabs")

    code, _, err = call(tiny["dir"] / "missing.vcf")
    assert_input_error(code, err, "missing.vcf does not exist")
    # without its header lines: htslib's "invalid file ... is it VCF/BCF format?"
    bare = tiny["dir"] / "bare.vcf"
    bare.write_text(f"chr1\t2000\t.\t{seq[1999]}\tA\t.\t.\t.\n")
    code, _, err = call(bare)
    assert_input_error(code, err, "bare.vcf has no VCF header", "'##fileformat=VCFv4.2'", "#CHROM")
    bare.write_text("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t2000\t.\tA\tC\t.\t.\t.\n")
    code, _, err = call(bare)
    assert_input_error(code, err, "no '##fileformat=VCF...' first line")
    damaged = tiny["dir"] / "damaged.vcf.gz"
    pysam.tabix_compress(str(write_vcf(tiny["dir"] / "d.vcf", rows)), str(damaged))
    data = bytearray(damaged.read_bytes())
    data[30:60] = bytes(30)
    damaged.write_bytes(bytes(data))
    code, _, err = call(damaged)
    assert_input_error(code, err, "damaged.vcf.gz")
    assert not out.exists() and not list(tiny["dir"].glob(".scores.tsv*"))

    code, _, err = run_cli(
        ["variants", "-m", str(folder), "-g", str(tiny["genome"]), "-o", str(out)], capsys
    )
    assert_input_error(code, err, "--ism")
    ism = ["variants", "-m", str(folder), "-g", str(tiny["genome"]), "-o", str(out), "--ism"]
    for region, needles in (
        ("chr2:1-30000", ("at most 20,000 bp",)),
        ("chr2:10-4001", ("1 ≤ START ≤ END ≤ 4,000",)),
        ("2:1-10", ("'2'", "'chr2'")),
        ("chr2 1 10", ("CHROM:START-END",)),
    ):
        code, _, err = run_cli([*ism, region], capsys)
        assert_input_error(code, err, "--ism", *needles)
    code, _, err = run_cli([*ism, "chr2:1-10", "--long"], capsys)
    assert_input_error(code, err, "--long", "applies to a VCF")
    assert not out.exists() and not list(tiny["dir"].glob(".scores*"))


# --------------------------------------------------------------------------- ISM


def test_ism_equals_the_vcf_scores_of_the_same_snvs(tiny, capsys):
    _, folder = make_run(tiny)
    seq = genome_seq(tiny, "chr2")
    start, end = 995, 1004  # 1-based, inclusive; runs into chr2's N stretch at 1001
    out = tiny["dir"] / "ism.npz"
    base = ["-m", str(folder), "-g", str(tiny["genome"]), "--stats", "sum,max_abs"]
    code, _, err = run_cli(
        ["variants", "--ism", f"chr2:{start}-{end}", "-o", str(out), *base], capsys
    )
    assert code == 0, err
    assert (tiny["dir"] / "ism.png").read_bytes().startswith(b"\x89PNG")
    maps = np.load(out)
    assert maps["sum"].shape == (4, end - start + 1, 4)
    assert maps["tracks"].tolist() == ["plus", "minus", "dense", "sparse"]

    rows = []
    for pos in range(start, end + 1):
        ref = seq[pos - 1]
        rows += [("chr2", pos, ".", ref, alt) for alt in BASES if ref != "N" and alt != ref]
    vcf = write_vcf(tiny["dir"] / "ism.vcf", rows)
    table_path = tiny["dir"] / "ism.tsv"
    code, _, err = run_cli(["variants", str(vcf), "-o", str(table_path), *base], capsys)
    assert code == 0, err
    table = pd.read_csv(table_path, sep="\t")
    for stat in ("sum", "max_abs"):
        grid = maps[stat]
        for _, row in table.iterrows():
            got = grid[:, row["pos"] - start, BASES.index(row["alt"])]
            want = row[[f"{stat}:{t}" for t in maps["tracks"]]].to_numpy(float)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    n_bases = [i for i in range(end - start + 1) if seq[start - 1 + i] == "N"]
    assert n_bases and np.isnan(maps["sum"][:, n_bases]).all()
    ref_codes = maps["sequence"]
    known = np.flatnonzero(ref_codes < 4)
    assert (maps["sum"][:, known, ref_codes[known]] == 0).all()


def test_untransform_is_applied_per_bin_before_scoring(tiny):
    model, _ = make_run(tiny)
    seq = genome_seq(tiny, "chr1")
    rows = [("chr1", p, ".", seq[p - 1], "ACGT"[(p * 5) % 4]) for p in (1500, 2500, 3500)]
    rows = [r for r in rows if r[3] != r[4]]
    manifest = tiny_manifest(tiny)
    manifest["tracks"][2]["clip_soft"] = 0.01  # a soft clip that bites, and a scale
    manifest["tracks"][3]["scale"] = 0.5
    variants = [(c, p, r, a, i) for c, p, i, r, a in rows]
    ids = [f"chr1:{p}:{r}:{a}" for _, p, _, r, a in rows]
    options = dict(manifest=manifest, device="cpu", tracks="dense,sparse", stats="sum")
    raw = iter_variant_scores(model, tiny["genome"], variants, profiles=ids, **options)
    raw.frame()
    done = score_variants(model, tiny["genome"], variants, untransform=True, **options)
    fields = [f.name for f in dataclasses.fields(Track)]
    tracks = [Track(**{k: manifest["tracks"][i][k] for k in fields}) for i in (2, 3)]
    for i, profile in enumerate(raw.profiles):
        expected = (untransform(profile["alt"], tracks) - untransform(profile["ref"], tracks)).sum(
            0
        )
        np.testing.assert_allclose(
            done.loc[i, ["sum:dense", "sum:sparse"]].to_numpy(float), expected, rtol=1e-3, atol=1e-5
        )
    raw_sums = np.array([(p["alt"] - p["ref"]).sum(0) for p in raw.profiles])
    assert raw_sums.shape == (len(rows), 2)
    assert not np.allclose(done[["sum:dense", "sum:sparse"]].to_numpy(float), raw_sums, atol=1e-5)


def test_table_rows_with_missing_cells_and_profile_ids_as_text(tiny):
    seq = genome_seq(tiny, "chr1")
    table = pd.DataFrame({"chrom": ["chr1", "chr1"], "pos": [2000, 2001],
                          "ref": [seq[1999], seq[2000]], "alt": [np.nan, "A" if seq[2000] != "A" else "C"],
                          "id": [pd.NA, "rs2"]})  # fmt: skip
    scores = iter_variant_scores(BaseCounts(CountsConfig()), tiny["genome"], table,
                                 manifest=counts_manifest(), device="cpu", profiles="rs2,rs9")  # fmt: skip
    frame = scores.frame()
    assert frame["status"].tolist() == ["no_alt", "ok"]
    assert frame["id"][0] == f"chr1:2000:{seq[1999]}:."
    assert [p["variant"].id for p in scores.profiles] == ["rs2"]


def variant_readers() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "gitool-variant-inputs"]


def test_inputs_are_read_ahead_in_a_thread_that_stops_with_the_scoring(tiny):
    """VCF records are parsed and sequences built in a background thread. It stops when the
    caller closes the iterator after the first table, and when the model fails, while the
    caller still holds the exception and its traceback (as a notebook does)."""
    seq = genome_seq(tiny, "chr1")
    snvs = [("chr1", p, seq[p - 1], "ACGT"[(p * 7) % 4]) for p in range(1000, 1400, 7)]
    snvs = [r for r in snvs if r[2] != r[3]]

    class FailsOnSecondBatch(BaseCounts):
        calls = 0

        def forward(self, x, head=None):
            type(self).calls += 1
            if type(self).calls == 2:
                raise RuntimeError("CUDA out of memory")
            return super().forward(x, head)

    def scores(model):
        return iter(iter_variant_scores(model, tiny["genome"], snvs, manifest=counts_manifest(),
                                        device="cpu", batch_size=2, show_progress=False))  # fmt: skip

    frames = scores(BaseCounts(CountsConfig()))
    assert len(next(frames)) == 1  # one variant (reference and alternate) per batch
    assert variant_readers()  # reading ahead while the caller holds the first table
    frames.close()
    assert not variant_readers()

    with pytest.raises(RuntimeError, match="out of memory") as failed:
        list(scores(FailsOnSecondBatch(CountsConfig())))
    assert failed.traceback and not variant_readers()


def one_snv(tiny, name: str) -> tuple[str, Path, Path, list[str]]:
    """A trained run and a VCF of one SNV (rs1, chr1:2000): the sequence of chr1, the VCF,
    the output ``name`` and the command that scores it there."""
    _, folder = make_run(tiny)
    seq = genome_seq(tiny, "chr1")
    vcf = write_vcf(tiny["dir"] / "calls.vcf", [("chr1", 2000, "rs1", seq[1999], "A")])
    out = tiny["dir"] / name
    args = ["variants", str(vcf), "-m", str(folder), "-g", str(tiny["genome"]), "-o", str(out)]
    return seq, vcf, out, args


def test_an_ensemble_gets_a_default_batch_that_holds_it(tiny, capsys):
    """--rc --shifts 0,1,-1 is 6 members: a reference and an alternate each, 12 inputs; the
    default batch (8 on a CPU) grows to hold them instead of refusing an option never given."""
    _, _, out, args = one_snv(tiny, "ens.tsv")
    code, _, err = run_cli([*args, "--rc", "--shifts", "0,1,-1"], capsys)
    assert code == 0, err
    assert "batch size 12" in " ".join(err.split())
    assert pd.read_csv(out, sep="\t")["status"].tolist() == ["ok"]


def test_scoring_runs_in_float32_unless_bf16_is_asked_for(tiny, capsys, monkeypatch):
    """On a GPU, bf16 keeps about 3 significant digits of each prediction, less than many
    variant effects: scoring asks for autocast only with --bf16 (on the CPU none runs)."""
    import contextlib

    import torch

    from gitool import runs
    from gitool.variants import scoring

    asked = []

    def spy(device, bf16=True):
        asked.append(bf16)
        return contextlib.nullcontext()

    monkeypatch.setattr(scoring, "autocast_for", spy)
    _, _, _, args = one_snv(tiny, "a.tsv")
    assert run_cli(args, capsys)[0] == 0
    assert asked and not any(asked)
    asked.clear()
    assert run_cli([*args[:-1], str(tiny["dir"] / "b.tsv"), "--bf16"], capsys)[0] == 0
    assert asked and all(asked)
    cuda = torch.device("cuda")
    assert isinstance(runs.autocast_for(cuda, bf16=False), contextlib.nullcontext)
    assert isinstance(runs.autocast_for(torch.device("cpu")), contextlib.nullcontext)


def test_a_forced_rerun_leaves_no_profiles_of_the_earlier_run(tiny, capsys):
    seq, vcf, _, args = one_snv(tiny, "scores.tsv")
    assert run_cli([*args, "--profiles", "rs1"], capsys)[0] == 0
    assert np.load(tiny["dir"] / "scores.profiles.npz")["id"].tolist() == ["rs1"]
    write_vcf(vcf, [("chr1", 2000, "rs9", seq[1999], "A")])  # rs1 is gone
    code, _, err = run_cli([*args, "--profiles", "rs1", "--force"], capsys)
    assert code == 0, err
    assert "no profile: rs1" in " ".join(err.split())
    profiles = np.load(tiny["dir"] / "scores.profiles.npz")
    assert profiles["id"].tolist() == [] and profiles["ref"].shape == (0, 25, 4)


def test_a_compressed_name_for_a_text_output_is_refused(tiny, capsys):
    _, _, out, args = one_snv(tiny, "scores.tsv.gz")
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, "-o", "scores.tsv.gz", "uncompressed", "without .gz")
    assert not out.exists() and not list(tiny["dir"].glob(".scores*"))
