"""Synthetic motif-interaction benchmark (GLIFAC paper appendix A)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from gitool.data.labels import LabelStore, open_any_store
from gitool.errors import InputError
from gitool.interpret.motifs import (
    Motif,
    best_scan_scores,
    load_builtin_motifs,
    read_motif_file,
    reverse_complement,
)
from gitool.interpret.synthetic import (
    DETECTABLE_AUROC,
    INTERACTIONS,
    Interaction,
    detectability,
    generate,
    labels_from_presence,
    save_store,
    split_assignment,
)

from helpers import assert_input_error, run_cli

NAMES = ("CEBPB", "ELF1", "ESR1", "FOXN3", "GATA1", "IRF1", "NFIB", "SIX3", "SPI1", "TAL1",
         "TEAD1", "YY1")  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return generate(10_000, seed=3)


def _widths(d):
    return np.array([len(m.counts) for m in load_builtin_motifs(d.motif_names)])


def test_shapes_and_counts(data):
    assert data.codes.shape == (10_000, 200) and data.codes.dtype == np.uint8
    assert data.labels.shape == (10_000, 12) and data.labels.dtype == np.uint8
    assert data.codes.max() <= 3
    assert data.motif_names == NAMES
    per_seq = np.bincount(data.instances["sequence"], minlength=10_000)
    assert per_seq.min() == 1 and per_seq.max() == 5
    # 1..5 uniform: each count ~2000
    np.testing.assert_allclose(np.bincount(per_seq)[1:] / 10_000, 0.2, atol=0.02)
    # motifs uniform with replacement
    np.testing.assert_allclose(np.bincount(data.instances["motif"]) / len(data.instances),
                               1 / 12, atol=0.01)  # fmt: skip
    # strand balance
    assert abs((data.instances["strand"] == "-").mean() - 0.5) < 0.015
    assert set(np.unique(data.instances["strand"])) == {"+", "-"}


def test_spacing(data):
    ins = data.instances
    ends = ins["start"] + _widths(data)[ins["motif"]]  # exclusive
    assert ins["start"].min() >= 1 and ends.max() <= 199  # >= 1 bp from both ends
    same = ins["sequence"][1:] == ins["sequence"][:-1]
    assert (ins["start"][1:][same] >= ends[:-1][same] + 1).all()  # >= 1 bp apart, in order
    # placements reach both ends of the allowed range
    assert ins["start"].min() == 1 and ends.max() == 199


def test_instances_match_one_hot_motifs():
    # one-hot PPMs: sampling is deterministic, so every instance's bases are known exactly
    rng = np.random.default_rng(0)
    motifs = []
    for i in range(4):
        seq = rng.integers(0, 4, size=6 + i)
        motifs.append(Motif(f"M{i}", f"X{i}", np.eye(4)[seq] * 10))
    d = generate(2000, seed=1, motifs=motifs, interactions=(), length=60)
    for row in d.instances:
        m = motifs[row["motif"]]
        want = m.counts.argmax(axis=1).astype(np.uint8)
        if row["strand"] == "-":
            want = reverse_complement(want)
        got = d.codes[row["sequence"], row["start"] : row["start"] + m.length]
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(d.labels, d.presence())  # no interactions: label = present


def test_determinism():
    a = generate(500, seed=7)
    b = generate(500, seed=7)
    c = generate(500, seed=8)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.instances, b.instances)
    assert not np.array_equal(a.codes, c.codes)


def _presence(*sets):
    out = np.zeros((len(sets), 12), np.uint8)
    for i, names in enumerate(sets):
        for n in names:
            out[i, NAMES.index(n)] = 1
    return out


def _labelled(row):
    return {NAMES[j] for j in np.flatnonzero(row)}


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"ELF1"}, set()),  # AND pair: alone -> not bound
        ({"SIX3"}, set()),
        ({"ELF1", "SIX3"}, {"ELF1", "SIX3"}),
        ({"TAL1", "CEBPB"}, {"CEBPB"}),
        ({"TAL1", "GATA1"}, {"TAL1", "GATA1"}),
        ({"ESR1"}, {"ESR1"}),  # XOR pair: alone -> bound
        ({"FOXN3"}, {"FOXN3"}),
        ({"ESR1", "FOXN3"}, set()),  # both -> inhibited
        ({"IRF1", "SPI1", "YY1"}, {"YY1"}),
        ({"IRF1", "TEAD1", "NFIB"}, {"IRF1", "TEAD1", "NFIB"}),
        ({"ELF1", "SIX3", "ESR1", "FOXN3", "SPI1"}, {"ELF1", "SIX3", "SPI1"}),
        (set(NAMES), {"ELF1", "SIX3", "TAL1", "GATA1", "CEBPB", "NFIB", "TEAD1", "YY1"}),
        (set(), set()),
    ],
)
def test_label_logic_hand_made(present, expected):
    labels = labels_from_presence(_presence(present), NAMES)
    assert _labelled(labels[0]) == expected


def test_generated_labels_follow_presence(data):
    np.testing.assert_array_equal(data.labels, labels_from_presence(data.presence(), NAMES))
    pres = data.presence().astype(bool)
    lab = data.labels.astype(bool)
    i = {n: NAMES.index(n) for n in NAMES}
    assert (lab[:, i["ELF1"]] == (pres[:, i["ELF1"]] & pres[:, i["SIX3"]])).all()
    assert (lab[:, i["SPI1"]] == (pres[:, i["SPI1"]] & ~pres[:, i["IRF1"]])).all()
    assert (lab[:, i["YY1"]] == pres[:, i["YY1"]]).all()
    # each interaction case occurs in the data
    both = pres[:, i["ESR1"]] & pres[:, i["FOXN3"]]
    assert both.sum() > 50 and (pres[:, i["TAL1"]] & pres[:, i["GATA1"]]).sum() > 50


def test_interactions_ground_truth():
    assert {(x.a, x.b, x.kind) for x in INTERACTIONS} == {
        ("ELF1", "SIX3", "and"),
        ("TAL1", "GATA1", "and"),
        ("ESR1", "FOXN3", "xor"),
        ("IRF1", "SPI1", "xor"),
    }


def test_bad_input():
    with pytest.raises(InputError, match="unknown motif name"):
        generate(10, motifs=load_builtin_motifs(["CEBPB", "NOPE"]))
    with pytest.raises(InputError, match="^interactions ELF1/SIX3.*or interactions none$"):
        generate(10, motifs=load_builtin_motifs(["CEBPB"]))
    with pytest.raises(InputError, match="kind"):
        labels_from_presence(np.zeros((1, 2)), ["A", "B"], (Interaction("A", "B", "or"),))
    with pytest.raises(InputError, match="^motifs names no motifs"):
        generate(10, motifs=[])


def test_interactions_take_the_motifs_spelling_and_name_a_bad_pair(tmp_path, capsys):
    """`--motifs elf1` worked but `--interactions elf1/six3` did not; ELF1/ELF1 said "at
    most one pair"."""
    base = ["synth-motifs", "--sequences", "60", "--motifs", "ELF1,SIX3,GATA1"]
    code, _, err = run_cli([*base, "--interactions", "elf1/Six3:and", "-o", tmp_path / "a"],
                           capsys)  # fmt: skip
    assert code == 0, err
    table = (tmp_path / "a" / "interactions.tsv").read_text()
    assert table.splitlines()[1].split("\t") == ["ELF1", "SIX3", "and"]
    for given, message in (
        ("ELF1/elf1:and", "ELF1/elf1: a motif cannot pair with itself"),
        ("ELF1/SIX3:and,six3/GATA1:xor", "six3/GATA1: SIX3 is already in a pair"),
        ("ELF1/TAL1:and", "ELF1/TAL1 names motif(s) TAL1 that are not among the motifs"),
    ):
        code, _, err = run_cli([*base, "--interactions", given, "-o", tmp_path / "b"], capsys)
        assert_input_error(code, err, f"--interactions {message}")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        # each message names the synth-motifs option to change
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["-n", "0"], "--sequences must be >= 1, got 0"),
        (["--min-instances", "0"], "--min-instances must be >= 1, got 0"),
        (
            ["--min-instances", "3", "--max-instances", "2"],
            "--min-instances 3 is more than --max-instances 2",
        ),
        (["--length", "0"], "--length must be >= 1, got 0"),
        (
            ["--length", "50"],
            "--length 50 is too short for 5 instances of the longest motif "
            "(17 bp) with 1-bp gaps: give --length >= 91 (or a lower --max-instances)",
        ),
        (["--motifs", ","], "--motifs ',' names no motifs"),
    ],
)
def test_bad_options_name_the_option(tmp_path, capsys, args, needle):
    code, _, err = run_cli(["synth-motifs", "-n", "10", "-o", tmp_path / "m", *args], capsys)
    assert_input_error(code, err, needle)
    assert not (tmp_path / "m").exists()


def test_synth_motifs_claims_its_output_before_generating(tmp_path, monkeypatch):
    """The library function behind the command: it writes the store and returns what it
    wrote; with force it replaces an earlier store, but never one holding its --motifs file,
    and it refuses before a single sequence is generated."""
    import gitool.interpret.synthetic as synthetic
    from gitool.config.synth_motifs import SynthMotifsOptions

    out = tmp_path / "m"
    options = SynthMotifsOptions(out=str(out), sequences=20, motifs="ELF1,SIX3",
                                 interactions="ELF1/SIX3:and", seed=1)  # fmt: skip
    summary = synthetic.synth_motifs(options)
    assert summary.out == out and summary.counts == {"train": 14, "valid": 2, "test": 4}
    assert (summary.motifs, summary.interactions) == (2, 1)
    assert LabelStore(out).tasks == ["ELF1", "SIX3"]

    def never(*args, **kwargs):
        raise AssertionError("generated before the output was claimed")

    monkeypatch.setattr(synthetic, "generate", never)
    with pytest.raises(InputError, match="^out .* already exists; pass force"):
        synthetic.synth_motifs(options)
    jaspar = out / "motifs.jaspar"
    text = jaspar.read_text()
    again = SynthMotifsOptions(out=str(out), sequences=20, motifs=str(jaspar), force=True,
                               interactions="none")  # fmt: skip
    with pytest.raises(InputError, match=f"^out {out} holds {jaspar}, one of this command's"):
        synthetic.synth_motifs(again)
    assert jaspar.read_text() == text
    with pytest.raises(InputError, match="^min_instances 6 is more than max_instances 5"):
        SynthMotifsOptions(min_instances=6)


def test_split_sizes():
    split = split_assignment(1000, seed=0)
    np.testing.assert_array_equal(np.bincount(split), [700, 100, 200])
    np.testing.assert_array_equal(split, split_assignment(1000, seed=0))
    assert not np.array_equal(split, split_assignment(1000, seed=1))


def test_save_store_round_trip(tmp_path, data):
    path = save_store(tmp_path / "sub" / "motifs", data)
    assert not list(path.parent.glob(".*"))
    store = open_any_store(path)
    assert isinstance(store, LabelStore)
    assert store.tasks == list(NAMES) and store.seq_length == 200
    assert store.interactions() == INTERACTIONS
    assert [store.count(s) for s in ("train", "valid", "test")] == [7000, 1000, 2000]
    split = split_assignment(10_000, seed=3)
    for s, name in enumerate(("train", "valid", "test")):
        rows = np.flatnonzero(split == s)
        np.testing.assert_array_equal(store.sequences(name), data.codes[rows])
        np.testing.assert_array_equal(store.labels(name), data.labels[rows])
        np.testing.assert_array_equal(np.load(path / name / "ids.npy"), rows)
    motifs = read_motif_file(store.motif_file())
    assert [m.name for m in motifs] == list(NAMES)
    assert motifs[NAMES.index("TAL1")].matrix_id == "MA0091.2"
    for got, want in zip(motifs, data.motifs, strict=True):
        np.testing.assert_allclose(got.counts, want.counts)
    # every instance row points at its motif's bases in its split's sequences
    table = pd.read_csv(path / "instances.tsv", sep="\t")
    assert len(table) == len(data.instances)
    by_name = {m.name: m for m in data.motifs}
    for row in table.sample(200, random_state=0).itertuples():
        seq = store.sequences(row.split)[row.index, row.start : row.end]
        np.testing.assert_array_equal(seq, data.codes[row.sequence, row.start : row.end])
        assert row.end - row.start == by_name[row.motif].length
    with pytest.raises(InputError, match="already exists; pass force"):
        save_store(path, data)
    save_store(path, data, force=True)


def test_force_replaces_only_a_previous_store(tmp_path, capsys, monkeypatch):
    """--force replaces an empty folder or a label store, never a folder of other files,
    nor the current folder (renaming '.' failed with EBUSY)."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    code, _, err = run_cli(["synth-motifs", "-n", "20", "-o", precious, "--force"], capsys)
    assert_input_error(code, err, f"-o {precious} is a non-empty folder that is not a label "
                       "store", "refusing to replace it even with --force")  # fmt: skip
    assert [p.name for p in precious.iterdir()] == ["thesis.txt"]
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "empty"):  # an empty folder, then the store
        code, _, err = run_cli(["synth-motifs", "-n", "20", "-o", out, "--force"], capsys)
        assert code == 0, err
        assert LabelStore(out).count("train") == 14
    monkeypatch.chdir(tmp_path / "empty")
    code, _, err = run_cli(["synth-motifs", "-n", "20", "-o", ".", "--force"], capsys)
    assert_input_error(code, err, "-o . is the current folder", "choose another -o")
    assert LabelStore(tmp_path / "empty").count("train") == 14


def test_warns_about_empty_splits(tmp_path, capsys):
    code, _, err = run_cli(["synth-motifs", "-n", "1", "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    err = " ".join(err.split())
    assert "warning: the valid and test splits have no sequences" in err
    assert "give more --sequences" in err
    # a split given fraction 0 is empty on purpose: no warning
    code, _, err = run_cli(["synth-motifs", "-n", "20", "-o", tmp_path / "t",
                            "--split-fractions", "0.8,0,0.2"], capsys)  # fmt: skip
    assert code == 0 and "no sequences" not in err


def test_timing_10k():
    start = time.perf_counter()
    generate(10_000, seed=0)
    assert time.perf_counter() - start < 2.0


def test_builtin_motifs_stand_out_and_do_not_cross_detect(data):
    """The design property behind the choice of matrix versions (example_data/make_motifs.py):
    a log-odds scan finds every motif (the GLIFAC paper's models reach AUPR 0.95-0.97), and no
    motif's scan mistakes another motif's instances for its own."""
    table = detectability(data, max_sequences=5_000)
    assert list(table["motif"]) == list(NAMES)
    assert (table["scan_auroc"] > DETECTABLE_AUROC).all(), table
    assert (table["scan_recall"] > 0.65).all(), table
    # cross-detection: scan for A in sequences whose only instance is B
    single = np.bincount(data.instances["sequence"], minlength=len(data.codes)) == 1
    rows = data.instances[single[data.instances["sequence"]]]
    background = np.random.default_rng(0).integers(0, 4, (2_000, 200), dtype=np.uint8)
    for a, motif in enumerate(data.motifs):
        cutoff = np.quantile(best_scan_scores(background, motif), 0.99)
        for b in range(len(data.motifs)):
            if a != b:
                seqs = data.codes[rows["sequence"][rows["motif"] == b]]
                hits = (best_scan_scores(seqs, motif) > cutoff).mean()
                assert hits < 0.08, (motif.name, NAMES[b], hits)


def test_the_detectability_warning_needs_enough_sequences(tmp_path, capsys):
    """On 50 sequences a well-found motif's scan AUROC is mostly chance (GATA1 drew 0.946):
    no warning. A 4-bp, nearly flat matrix on 2,000 sequences is warned about."""
    code, _, err = run_cli(["synth-motifs", "-n", "50", "-o", tmp_path / "few",
                            "--split-fractions", "1,0,0"], capsys)  # fmt: skip
    assert code == 0 and "hardly learn" not in err
    weak = tmp_path / "weak.jaspar"
    strong = {b: " ".join("97" if c == b else "1" for c in "ACGTTGCAAC") for b in "ACGT"}
    weak.write_text(">MA9999.1 FLAT\nA [ 30 25 25 30 ]\nC [ 20 25 25 20 ]\n"
                    "G [ 20 25 25 20 ]\nT [ 30 25 25 30 ]\n>MA9998.1 SHARP\n"
                    + "".join(f"{b} [ {strong[b]} ]\n" for b in "ACGT"))  # fmt: skip
    code, _, err = run_cli(["synth-motifs", "-n", "2000", "-o", tmp_path / "weak", "--motifs",
                            weak, "--interactions", "none"], capsys)  # fmt: skip
    assert code == 0, err
    assert "motif FLAT" in err and "hardly learn" in " ".join(err.split())
    assert "motif SHARP" not in err
