"""The bundled example data: real yeast genome, honest tracks, and it builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pyfaidx

from gitool.data.store import Store
from gitool.data.tracks import read_tracks

from helpers import run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "example_data"
SACCER3 = {"chrI": 230218, "chrII": 813184, "chrIII": 316620, "chrIV": 1531933, "chrV": 576874,
           "chrVI": 270161, "chrVII": 1090940, "chrVIII": 562643, "chrIX": 439888, "chrX": 745751,
           "chrXI": 666816, "chrXII": 1078177, "chrXIII": 924431, "chrXIV": 784333,
           "chrXV": 1091291, "chrXVI": 948066}  # fmt: skip


def test_folder_is_small_and_documented():
    size = sum(p.stat().st_size for p in EXAMPLE.iterdir() if p.is_file())
    assert size < 10e6
    provenance = (EXAMPLE / "PROVENANCE.md").read_text()
    for name in (
        "genome.fa.gz",
        "tracks.txt",
        "regions.bed",
        "blacklist.bed",
        "make_example_data.py",
    ):
        assert (EXAMPLE / name).exists() and name in provenance


def test_genome_is_sacCer3_and_tracks_match_it():
    fasta = pyfaidx.Fasta(str(EXAMPLE / "genome.fa.gz"))
    assert {name: len(rec) for name, rec in fasta.records.items()} == SACCER3
    tracks = read_tracks(EXAMPLE / "tracks.txt")
    pairs = {t.identifier: tracks[t.strand_pair].identifier for t in tracks}
    assert pairs["gene_plus"] == "gene_minus" and pairs["gene_minus"] == "gene_plus"
    for track in tracks:
        bw = pyBigWig.open(track.file)
        assert bw.chroms() == SACCER3
        assert bw.header()["minVal"] >= 0 and bw.header()["sumData"] > 0
        bw.close()


def test_example_store_builds_with_signal_in_every_track(tmp_path, capsys):
    args = ["build-dataset", EXAMPLE / "genome.fa.gz", EXAMPLE / "tracks.txt", "-o", tmp_path / "data",
            "--blacklist", EXAMPLE / "blacklist.bed", "-j", "2"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    store = Store(tmp_path / "data")
    assert store.count("train") > 900 and store.count("valid") > 40 and store.count("test") > 40
    targets = np.asarray(store.targets("train"), dtype=np.float32)
    assert targets.shape[1:] == (80, 7)
    assert np.isfinite(targets).all() and (targets >= 0).all()
    assert (targets.mean(axis=(0, 1)) > 0).all()
    # The rDNA array (blacklisted) is not in any target span.
    windows = store.windows("train")
    rdna = (
        (windows.chrom == "chrXII")
        & (windows.target_start < 468931)
        & (windows.target_end > 451574)
    )
    assert not rdna.any()
