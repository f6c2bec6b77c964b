"""``gitool marginalize``: checked against a model whose output is known from the sequence
(bin ``j`` counts the A, C, G and T of target bin ``j``), so every insertion has an exact
expected change; the shuffled backgrounds against the genome windows they came from; and
the command line's outputs, refusals and cleanup."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from gitool.attribution import marginalize as mg
from gitool.config.marginalize import MarginalizeOptions
from gitool.data.genome import Genome, encode
from gitool.errors import InputError
from gitool.interpret.motifs import format_jaspar, load_builtin_motifs
from gitool.made import RECORD

from fixture_models import BASES, BaseCounts, CountsConfig, counts_manifest, make_run
from helpers import assert_input_error, run_cli

L, BIN, T, LEFT = 400, 8, 25, 100  # the fixtures' geometry: bin j covers input [100 + 8j, 108 + 8j)
DOCUMENTED = [
    "spacing", "orientation", "track", "bin", "change", "se", "change_total", "se_total",
    "background", "change_motif1", "change_motif2", "interaction", "se_interaction",
    "n_backgrounds", "motif1", "start1", "sequence1", "motif2", "start2", "sequence2",
]  # fmt: skip


def counts(codes: np.ndarray) -> np.ndarray:
    return np.array([(codes == b).sum() for b in range(4)], dtype=np.float64)


def backgrounds(tiny, n: int = 6, seed: int = 0) -> mg.Backgrounds:
    genome = Genome(tiny["genome"])
    try:
        return mg.shuffled_backgrounds(genome, L, n, seed)
    finally:
        genome.close()


def options(tiny, out, **kwargs) -> MarginalizeOptions:
    values = dict(motif="AAAAAAAA", out=str(out), genome=str(tiny["genome"]), n_backgrounds=5)
    return MarginalizeOptions(**{**values, **kwargs})


def run_counts(tiny, out, **kwargs) -> mg.MarginalizeSummary:
    model = BaseCounts(CountsConfig())
    return mg.marginalize(options(tiny, out, **kwargs), model=model, manifest=counts_manifest())


# --------------------------------------------------------------------------- backgrounds


def test_backgrounds_are_seeded_dinucleotide_shuffles_of_n_free_genome_windows(tiny):
    bg = backgrounds(tiny, n=8, seed=3)
    assert bg.codes.shape == (8, L) and bg.codes.dtype == np.uint8
    genome = Genome(tiny["genome"])
    try:
        for codes, chrom, start in zip(bg.codes, bg.chroms, bg.starts, strict=True):
            assert chrom != "chrM"  # primary chromosomes only (chrM is also shorter than 400)
            size = genome.sizes[chrom]
            assert (size - L) // 4 <= start <= size - L - (size - L) // 4  # clear of the ends
            window = genome.codes(chrom, int(start), int(start) + L)
            assert (window < 4).all() and (codes < 4).all()
            pairs = lambda c: Counter(zip(c[:-1].tolist(), c[1:].tolist(), strict=True))  # noqa: E731
            assert pairs(codes) == pairs(window)  # every dinucleotide count kept
            assert codes[0] == window[0] and codes[-1] == window[-1]
            assert not np.array_equal(codes, window)  # but shuffled
            # chr2's N run (1000-1600) is never drawn
            assert not (chrom == "chr2" and start < 1600 and start + L > 1000)
    finally:
        genome.close()
    again = backgrounds(tiny, n=8, seed=3)
    assert np.array_equal(again.codes, bg.codes) and list(again.starts) == list(bg.starts)
    assert not np.array_equal(backgrounds(tiny, n=8, seed=4).codes, bg.codes)
    # a background does not depend on how many others are drawn
    assert np.array_equal(backgrounds(tiny, n=3, seed=3).codes, bg.codes[:3])


def test_a_genome_without_long_enough_n_free_sequence_is_refused(tmp_path):
    from conftest import write_fasta

    fasta = write_fasta(tmp_path / "short.fa", {"chr1": "ACGT" * 50, "chr2": "N" * 900})
    genome = Genome(fasta)
    try:
        with pytest.raises(InputError) as err:
            mg.shuffled_backgrounds(genome, L, 2, 0)
        assert err.value.field == "genome" and "free of N" in str(err.value)
    finally:
        genome.close()


# --------------------------------------------------------------------------- exact changes


def test_a_single_motif_changes_exactly_the_bases_it_replaced_in_its_bin(tiny):
    bg = backgrounds(tiny)
    motif = mg.resolve_motif("AAAAAAAA")
    plan = mg.plan_insertions(motif, None, (), ("+",), L, BIN, T)
    assert plan.insertion_bin == 12 and plan.conditions[1] == (("AAAAAAAA", 196),)
    model = BaseCounts(CountsConfig()).train()
    out = mg.insertion_predictions(model, bg.one_hot(), plan.conditions, batch_size=4)
    assert out.shape == (2, 6, T, 4)
    assert model.training  # the training flag is restored
    change = out[1] - out[0]
    for i, codes in enumerate(bg.codes):
        lost = counts(codes[196:204])  # the background bases the motif replaced
        expected = np.array([8.0, 0, 0, 0]) - lost
        assert np.array_equal(change[i, 12], expected), (i, change[i, 12], expected)
        assert lost[0] < 8  # the A track truly rises by the As the background lacked
    assert not np.delete(change, 12, axis=1).any()  # no other bin moves
    # the batch size does not change anything
    again = mg.insertion_predictions(model, bg.one_hot(), plan.conditions, batch_size=1)
    assert np.array_equal(again, out)


def test_the_command_reports_the_exact_mean_change_and_writes_all_outputs(tiny):
    out = tiny["dir"] / "res" / "single.tsv"
    summary = run_counts(tiny, out, n_backgrounds=6)
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == DOCUMENTED
    assert list(table.track) == list(BASES) and set(table.orientation) == {"+"}
    assert table.spacing.isna().all() and table.motif2.isna().all()
    saved = np.load(tiny["dir"] / "res" / "single.npz")
    lost = np.stack([counts(c[196:204]) for c in saved["backgrounds"]])
    expected = np.array([8.0, 0, 0, 0]) - lost  # per background
    exact = summary.table  # the TSV holds 6 significant digits
    assert np.allclose(exact.change, expected.mean(0), rtol=0, atol=1e-9)
    assert np.allclose(exact.change_total, expected.mean(0), rtol=0, atol=1e-9)
    se = expected.std(0, ddof=1) / np.sqrt(6)
    assert np.allclose(exact.se, se, rtol=1e-9)
    assert np.allclose(table.change, exact.change, rtol=1e-5)
    assert np.allclose(saved["change_at_bin"][0], expected)
    profile = saved["profile_mean"][0]
    assert np.allclose(profile[12], expected.mean(0)) and not np.delete(profile, 12, 0).any()
    assert (table.sequence1 == "AAAAAAAA").all() and (table.start1 == 196).all()
    assert (tiny["dir"] / "res" / "single.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in summary.paths] == ["single.tsv", "single.png", "single.npz"]
    assert sorted(p.name for p in (tiny["dir"] / "res").iterdir()) == [
        RECORD,
        "single.npz",
        "single.png",
        "single.tsv",
    ]  # fmt: skip  (no temporary file left)


def test_minus_inserts_the_reverse_complement_and_n_keeps_the_background(tiny):
    bg = backgrounds(tiny, n=4)
    motif = mg.resolve_motif("AACGNN")
    assert motif.oriented("-") == "NNCGTT"
    plan = mg.plan_insertions(motif, None, (), ("+", "-"), L, BIN, T)
    start = L // 2 - 3
    assert plan.conditions[1:] == [(("AACGNN", start),), (("NNCGTT", start),)]
    out = mg.insertion_predictions(BaseCounts(CountsConfig()), bg.one_hot(), plan.conditions)
    for i, codes in enumerate(bg.codes):
        for c, text in ((1, "AACGNN"), (2, "NNCGTT")):
            edited = codes.copy()
            kept = np.array([b != "N" for b in text])
            edited[start : start + 6][kept] = encode(text.replace("N", ""))
            expected = counts(edited[196:204]) - counts(codes[196:204])
            assert np.array_equal(out[c, i, 12] - out[0, i, 12], expected)


def test_a_pair_puts_motif_2_at_the_spacing_in_its_orientation(tiny):
    bg = backgrounds(tiny, n=4)
    m1, m2 = mg.resolve_motif("CCCCCCCC"), mg.resolve_motif("AAAAAAAG")
    plan = mg.plan_insertions(m1, m2, (0, 8), ("++", "+-"), L, BIN, T)
    by_key = {(a.spacing, a.orientation): a for a in plan.arrangements}
    assert by_key[8, "+-"].insertions == (("CCCCCCCC", 196), ("CTTTTTTT", 212))
    assert by_key[0, "++"].insertions == (("CCCCCCCC", 196), ("AAAAAAAG", 204))
    assert plan.notes == ()
    far = mg.plan_insertions(m1, m2, (150,), ("++",), L, BIN, T)  # motif 2 in the context
    assert far.arrangements[0].insertions[1] == ("AAAAAAAG", 354) and "context" in far.notes[0]
    out = mg.insertion_predictions(BaseCounts(CountsConfig()), bg.one_hot(), plan.conditions)
    for i, codes in enumerate(bg.codes):
        for (spacing, orientation), a in by_key.items():
            change = out[a.condition, i] - out[0, i]
            second = 13 + spacing // 8  # spacing 0: bin 13 (204-212); 8: bin 14 (212-220)
            text = a.insertions[1][0]
            lo = 196 + 8 + spacing
            assert np.array_equal(change[12], np.array([0, 8.0, 0, 0]) - counts(codes[196:204]))
            expected = counts(encode(text)) - counts(codes[lo : lo + 8])
            assert np.array_equal(change[second], expected), (spacing, orientation)
            assert not np.delete(change, [12, second], axis=0).any()
            alone = out[a.alone2, i] - out[0, i]
            assert np.array_equal(alone[second], expected) and not alone[12].any()


def test_a_pair_table_separates_each_motif_alone_and_finds_no_interaction_in_an_additive_model(
    tiny,
):
    out = tiny["dir"] / "pair.tsv"
    run_counts(tiny, out, motif="CCCCCCCC", motif2="GGGG", spacings="10,0",
               orientations="++,-+")  # fmt: skip
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == DOCUMENTED
    assert len(table) == 2 * 2 * 4 and list(table.spacing.unique()) == [0, 10]
    assert set(table.orientation) == {"++", "-+"} and set(table.sequence1) == {
        "CCCCCCCC",
        "GGGGGGGG",
    }
    assert set(table.start2) == {204, 214} and (table.sequence2 == "GGGG").all()
    assert np.allclose(table.change, table.change_motif1 + table.change_motif2, atol=1e-6)
    assert np.allclose(table.interaction, 0, atol=1e-6)
    forward = table[(table.orientation == "++") & (table.track == "C")]
    reverse = table[(table.orientation == "-+") & (table.track == "G")]
    assert (forward.change_motif1 > 0).all() and (reverse.change_motif1 > 0).all()
    assert (tiny["dir"] / "pair.png").read_bytes().startswith(b"\x89PNG")


class Multiply(torch.nn.Module):
    """A non-additive model: bin 12's A count times bin 13's C count, in every track."""

    def __init__(self):
        super().__init__()
        self.config = CountsConfig()
        self.one = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, head=None):
        bins = BaseCounts(self.config)(x)  # (B, T, 4)
        value = bins[:, 12, 0] * bins[:, 13, 1]
        return value[:, None, None].expand(-1, T, 4) * self.one


def test_an_interaction_shows_where_effects_do_not_add_up(tiny):
    out = tiny["dir"] / "inter.tsv"
    summary = mg.marginalize(
        options(tiny, out, motif="AAAAAAAA", motif2="CCCCCCCC", spacings="0,16",
                orientations="++"),
        model=Multiply(), manifest=counts_manifest(),
    )  # fmt: skip
    saved = np.load(tiny["dir"] / "inter.npz")
    a = np.stack([counts(c[196:204])[0] for c in saved["backgrounds"]])
    c = np.stack([counts(c[204:212])[1] for c in saved["backgrounds"]])
    table = summary.table[summary.table.track == "A"].set_index("spacing")
    # adjacent (bin 13): (8 - a)(8 - c) excess over the sum; 16 bp away the motifs do not meet
    assert np.isclose(table.loc[0, "interaction"], ((8 - a) * (8 - c)).mean(), atol=1e-5)
    assert np.isclose(table.loc[16, "interaction"], 0, atol=1e-5)


def test_the_same_seed_gives_the_same_table_and_another_seed_another(tiny):
    first = run_counts(tiny, tiny["dir"] / "s1.tsv", seed=11).table
    second = run_counts(tiny, tiny["dir"] / "s2.tsv", seed=11).table
    other = run_counts(tiny, tiny["dir"] / "s3.tsv", seed=12).table
    pd.testing.assert_frame_equal(first, second)
    assert not np.allclose(first.change, other.change)


# --------------------------------------------------------------------------- motifs


def test_motifs_from_sequences_names_and_files(tiny, tmp_path):
    gata = load_builtin_motifs(["GATA1"])[0]
    named = mg.resolve_motif("gata1")
    assert named.sequence == "".join("ACGT"[i] for i in gata.counts.argmax(1))
    assert named.name == "GATA1" and "MA0035" in named.source
    iupac = mg.resolve_motif("acgtRyN")
    assert iupac.sequence == "ACGTACN" and "R, Y" in iupac.note  # first of its bases, warned
    assert mg.resolve_motif("ACGT").note == ""
    one = tmp_path / "one.jaspar"
    one.write_text(format_jaspar([gata]))
    assert mg.resolve_motif(str(one)).sequence == named.sequence
    two = tmp_path / "two.jaspar"
    two.write_text(format_jaspar(load_builtin_motifs(["GATA1", "TAL1"])))
    for text, needle in [(str(two), "holds 2 motifs"), ("NNNN", "all N"), ("FOO1", "neither"),
                         ("", "empty"), (str(tmp_path), "folder")]:  # fmt: skip
        with pytest.raises(InputError) as err:
            mg.resolve_motif(text, "motif2")
        assert err.value.field == "motif2" and needle in str(err.value), str(err.value)


# --------------------------------------------------------------------------- the CLI


def test_cli_writes_the_table_plot_and_arrays_and_refuses_to_overwrite(tiny, capsys):
    _, run = make_run(tiny)
    out = tiny["dir"] / "out" / "gata.tsv"
    args = ["marginalize", "-m", run, "-g", tiny["genome"], "--motif", "GATA1",
            "--motif2", "TAL1", "--spacings", "0,10", "--orientations", "++,--",
            "--n-backgrounds", "3", "-o", out]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert "marginalized" in err and "largest change" in err and "GATA1" in err
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == DOCUMENTED
    assert len(table) == 2 * 2 * 4 and set(table.track) == {"plus", "minus", "dense", "sparse"}
    assert (table.n_backgrounds == 3).all() and table.change.notna().all()
    assert (out.parent / "gata.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with np.load(out.parent / "gata.npz") as saved:
        assert saved["change_at_bin"].shape == (4, 3, 4)
        assert saved["profile_mean"].shape == (4, T, 4) and saved["backgrounds"].shape == (3, L)
    before = out.read_bytes()
    code, _, err = run_cli(args, capsys)
    assert_input_error(code, err, "-o", "already exists", "--force")
    assert out.read_bytes() == before
    code, _, err = run_cli([*args, "--force", "--tracks", "dense"], capsys)
    assert code == 0, err
    assert set(pd.read_csv(out, sep="\t").track) == {"dense"}


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--motif", "GATA?"], ["--motif", "neither"]),
        (["--motif", "NOTAMOTIF1"], ["--motif", "built-in motif name"]),
        (["--motif", "GATA1", "--motif2", "TAL1", "--spacings", "400"], ["--spacings", "largest spacing that fits is"]),
        (["--motif", "GATA1", "--motif2", "TAL1", "--spacings", "-5"], ["--spacings", "swap --motif and --motif2"]),
        (["--motif", "GATA1", "--motif2", "TAL1", "--spacings", "5bp"], ["--spacings", "comma-separated"]),
        (["--motif", "GATA1", "--motif2", "TAL1", "--orientations", "+x"], ["--orientations", "two signs"]),
        (["--motif", "GATA1", "--orientations", "++"], ["--orientations", "one sign"]),
        (["--motif", "GATA1", "--spacings", "5"], ["--spacings", "--motif2"]),
        (["--motif", "RYAA", "--spacings", "5"], ["--spacings"]),  # the IUPAC warning waits
        (["--motif", "GATA1", "--tracks", "nope"], ["--tracks", "nope"]),
        (["--motif", "GATA1", "--n-backgrounds", "0"], ["--n-backgrounds", "must be"]),
        (["--motif", "A" * 401], ["--motif", "longer than the model's 400-bp input"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_option_and_writes_nothing(tiny, capsys, extra, needles):
    _, run = make_run(tiny)
    folder = tiny["dir"] / "bad"
    folder.mkdir()
    code, _, err = run_cli(
        ["marginalize", "-m", run, "-g", tiny["genome"], "-o", folder / "x.tsv", *extra], capsys
    )
    assert_input_error(code, err, *needles)
    assert list(folder.iterdir()) == []


def test_a_failure_while_writing_leaves_no_output(tiny, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr(mg, "_plot", broken)
    folder = tiny["dir"] / "partial"
    with pytest.raises(RuntimeError):
        run_counts(tiny, folder / "x.tsv")
    assert not folder.exists()  # nor the folder made for the outputs


def test_jaspar_fungi_motifs_by_name_or_matrix_id():
    from gitool.attribution.marginalize import resolve_motif
    from gitool.attribution.motif_db import load_builtin_database

    reb1 = next(m for m in load_builtin_database().motifs if m.name.upper() == "REB1")
    expected = "".join("ACGT"[i] for i in reb1.counts.argmax(1))
    for text in ("REB1", "reb1", reb1.matrix_id, reb1.matrix_id.split(".")[0]):
        motif = resolve_motif(text)
        assert motif.sequence == expected and reb1.matrix_id in motif.source


def test_motif_1_lies_in_one_bin_when_the_target_has_an_even_number_of_bins():
    from gitool.attribution.marginalize import plan_insertions, resolve_motif

    # the 17,712-bp presets: 80 bins of 128 bp, the input's centre on the bin 39/40 boundary
    plan = plan_insertions(resolve_motif("ATTACCCGG"), None, (), ("+",), 17712, 128, 80)
    ((_, start),) = plan.arrangements[0].insertions
    context_left = (17712 - 80 * 128) // 2
    first, last = ((start - context_left) // 128, (start + 8 - context_left) // 128)
    assert plan.insertion_bin == first == last == 40
