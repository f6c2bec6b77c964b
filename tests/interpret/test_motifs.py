"""Motifs: built-in JASPAR set, JASPAR/MEME files, PFM -> PPM -> sampling."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gitool.errors import InputError
from gitool.interpret.motifs import (
    BUILTIN_MOTIF_NAMES,
    EXTRA_MOTIF_NAMES,
    Motif,
    best_scan_scores,
    information_content,
    load_builtin_motifs,
    log_odds,
    motifs_from_option,
    ppm,
    read_motif_file,
    reverse_complement,
    sample_instances,
)

IDS = {
    "CEBPB": "MA0466.4",
    "ELF1": "MA0473.2",
    "ESR1": "MA0112.4",
    "FOXN3": "MA1489.1",
    "GATA1": "MA0035.3",
    "IRF1": "MA0050.1",
    "NFIB": "MA1643.2",
    "SIX3": "MA0631.1",
    "SPI1": "MA0080.6",
    "TAL1": "MA0091.2",
    "TEAD1": "MA0090.1",
    "YY1": "MA0095.2",
}
CONSENSUS = {
    "CEBPB": "ATTGCGCAAT",
    "ELF1": "AACCCGGAAGTG",
    "ESR1": "AGGTCACGGTGACCT",
    "FOXN3": "GTAAACAA",
    "GATA1": "TTCTTATCTGT",
    "IRF1": "GAAAGCGAAACC",
    "NFIB": "CCTGGCATTGTGCCAAG",
    "SIX3": "GATAGGGTATCACTAAT",
    "SPI1": "AAAAAGAGGAAGTGGAA",
    "TAL1": "ACCATCTGTT",
    "TEAD1": "CACATTCCTCCG",
    "YY1": "CAAGATGGCGGC",
}


def test_builtin_motifs_all_twelve():
    motifs = load_builtin_motifs()
    assert tuple(m.name for m in motifs) == BUILTIN_MOTIF_NAMES
    assert {m.name: m.matrix_id for m in motifs} == IDS
    for m in motifs:
        assert m.counts.shape == (m.length, 4) and 6 <= m.length <= 19  # fits CAN filters
        assert m.source == "JASPAR 2024 (CC BY 4.0)"
        assert (m.counts.sum(axis=1) > 0).all()
    assert {m.collection for m in motifs} == {"CORE"}
    consensus = {m.name: "".join("ACGT"[i] for i in m.counts.argmax(axis=1)) for m in motifs}
    assert consensus == CONSENSUS  # regression: the matrices as read from JASPAR 2024


def test_sp1_is_built_in_but_not_default():
    (sp1,) = load_builtin_motifs(["sp1"])
    assert (sp1.matrix_id, sp1.length) == ("MA0079.4", 15)
    assert "".join("ACGT"[i] for i in sp1.counts.argmax(axis=1)) == "TAAGCCACGCCCACT"
    assert "SP1" not in BUILTIN_MOTIF_NAMES and EXTRA_MOTIF_NAMES == ("SP1",)


def test_unknown_motif_name_is_clear_error():
    with pytest.raises(InputError, match=r"unknown motif name.*'FOO'.*CEBPB, ELF1"):
        load_builtin_motifs(["GATA1", "FOO"])


def test_ppm_and_sampling_round_trip():
    counts = np.array([[10, 0, 0, 0], [0, 5, 5, 0], [1, 1, 1, 1], [0, 0, 0, 3]], float)
    motif = Motif("toy", "X1", counts)
    probs = ppm(motif)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[1], [0, 0.5, 0.5, 0])
    with_pc = ppm(motif, pseudocount=1.0)
    assert (with_pc > 0).all()
    np.testing.assert_allclose(with_pc[0], np.array([11, 1, 1, 1]) / 14)
    rng = np.random.default_rng(0)
    sampled = sample_instances(motif, 40_000, rng)
    assert sampled.dtype == np.uint8 and sampled.shape == (40_000, 4)
    freq = np.stack([np.bincount(sampled[:, j], minlength=4) for j in range(4)]) / 40_000
    np.testing.assert_allclose(freq, probs, atol=0.015)
    assert (freq[probs == 0] == 0).all()  # zero-probability bases never drawn
    # builtin motif: empirical PPM of many samples recovers the PPM
    spi1 = load_builtin_motifs(["SPI1"])[0]
    s = sample_instances(spi1, 20_000, rng)
    emp = np.stack([np.bincount(s[:, j], minlength=4) for j in range(spi1.length)]) / 20_000
    np.testing.assert_allclose(emp, ppm(spi1), atol=0.02)


def test_reverse_complement_codes():
    codes = np.array([[0, 0, 1, 2, 3]], np.uint8)  # AACGT
    np.testing.assert_array_equal(reverse_complement(codes), [[0, 1, 2, 3, 3]])  # ACGTT


def test_bad_counts_rejected():
    with pytest.raises(InputError, match="shape"):
        Motif("x", "x", np.ones((3, 5)))
    with pytest.raises(InputError, match="pseudocount"):
        ppm(Motif("x", "x", np.zeros((2, 4))))


JASPAR = """>MA0001.1 AAA
A  [ 4 19  0  0 ]
C  [16  0 20  0 ]
G  [ 0  1  0 20 ]
T  [ 0  0  0  0 ]
>MA0002.1 BBB
10 0 0
0 10 0
0 0 10
0 0 0
"""

MEME = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF MA0001.1 AAA
letter-probability matrix: alength= 4 w= 3 nsites= 20 E= 0
 0.2 0.8 0.0 0.0
 0.95 0.0 0.05 0.0
 0.0 1.0 0.0 0.0
URL http://jaspar.genereg.net/matrix/MA0001.1

MOTIF M2
letter-probability matrix: alength= 4 w= 2
 0.25 0.25 0.25 0.25
 0.0 0.0 0.0 1.0
"""


def test_read_jaspar_file(tmp_path):
    path = tmp_path / "m.jaspar"
    path.write_text(JASPAR)
    a, b = read_motif_file(path)
    assert (a.name, a.matrix_id, b.name) == ("AAA", "MA0001.1", "BBB")
    np.testing.assert_array_equal(a.counts[:, 1], [16, 0, 20, 0])
    np.testing.assert_array_equal(b.counts, [[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0]])


def test_read_meme_file(tmp_path):
    path = tmp_path / "m.meme"
    path.write_text(MEME)
    a, b = read_motif_file(path)
    assert (a.name, a.matrix_id, b.name, b.matrix_id) == ("AAA", "MA0001.1", "M2", "M2")
    np.testing.assert_allclose(a.counts[0], [4, 16, 0, 0])  # probabilities x nsites
    np.testing.assert_allclose(ppm(b), [[0.25] * 4, [0, 0, 0, 1]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (">M1 X\nA [1 2]\nC [1 2]\nG [1 2]\n", r"m\.txt:1: .*3 rows"),
        (">M1 X\nA [1 2]\nC [1 2]\nG [1]\nT [1 2]\n", r"m\.txt:1: .*different lengths"),
        (">M1 X\nA [1 2]\nC [1 x]\n", r"m\.txt:3: expected"),
        ("MOTIF M\nletter-probability matrix: w= 2\n0.5 0.5 0 0\n0.5 0.5\n", r"m\.txt:4: .*4"),
        ("MOTIF M\nletter-probability matrix: w= 3\n0.5 0.5 0 0\n\n", r"m\.txt:1: .*w=3"),
        ("hello\n", r"not a JASPAR"),
    ],
)
def test_bad_motif_files(tmp_path, text, match):
    path = tmp_path / "m.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_motif_file(path)


def test_missing_motif_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_motif_file(tmp_path / "nope.meme")


def test_motif_option_folder_or_no_names(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=re.escape(f"motifs {tmp_path} is a folder; give a")):
        motifs_from_option(str(tmp_path))
    with pytest.raises(InputError, match="^motifs ' , ' names no motifs; give built-in names"):
        motifs_from_option(" , ")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "CEBPB").mkdir()  # a folder named like a built-in motif: the name wins
    assert [m.name for m in motifs_from_option("CEBPB")] == ["CEBPB"]
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError, match="^motifs mine is a folder"):
        motifs_from_option("mine")


def test_information_content_and_log_odds():
    one_base = Motif("A", "X", np.array([[5, 0, 0, 0], [0, 0, 0, 5]], float))
    uniform = Motif("U", "Y", np.ones((3, 4)))
    half = Motif("H", "Z", np.array([[1, 1, 0, 0]], float))
    assert information_content(one_base) == pytest.approx(4.0)
    assert information_content(uniform) == pytest.approx(0.0)
    assert information_content(half) == pytest.approx(1.0)
    weights = log_odds(one_base, pseudocount=0.01)
    assert weights[0, 0] == pytest.approx(np.log2(0.97 / 0.25))
    assert weights[0, 1] == pytest.approx(np.log2(0.01 / 0.25))
    with pytest.raises(InputError, match="pseudocount"):
        log_odds(one_base, pseudocount=0.3)


def test_best_scan_scores_both_strands_and_by_hand():
    motif = Motif("M", "X", np.array([[9, 1, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]], float))
    w = log_odds(motif)
    codes = np.array([
        [3, 3, 0, 2, 3, 3, 3],  # AGT forward at 2
        [1, 0, 1, 3, 1, 1, 1],  # ACT = reverse complement of AGT at 1 (ACT -> AGT)
        [1, 1, 1, 1, 1, 1, 1],  # CCC only
        [1, 4, 0, 2, 3, 1, 1],  # N (code 4) before a forward site: scores 0 at that base
    ], dtype=np.uint8)  # fmt: skip
    scores = best_scan_scores(codes, motif)
    site = w[0, 0] + w[1, 2] + w[2, 3]
    np.testing.assert_allclose(scores[[0, 1, 3]], site, rtol=1e-6)
    ccc = max(w[:, 1].sum(), w[::-1, ::-1][:, 1].sum())
    assert scores[2] == pytest.approx(ccc)
    # a brute-force scan of random sequences agrees
    rng = np.random.default_rng(0)
    seqs = rng.integers(0, 4, (50, 30), dtype=np.uint8)
    rc = w[::-1, ::-1]
    brute = [max(max(w[np.arange(3), s[p : p + 3]].sum(), rc[np.arange(3), s[p : p + 3]].sum())
                 for p in range(28)) for s in seqs]  # fmt: skip
    np.testing.assert_allclose(best_scan_scores(seqs, motif), brute, rtol=1e-5)
    assert np.isneginf(best_scan_scores(codes[:, :2], motif)).all()
