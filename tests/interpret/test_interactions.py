"""``gitool interactions``: GLIFAC and the local baseline on trained-model plumbing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from gitool.data.labels import LabelStore
from gitool.errors import InputError
from gitool.interpret.interactions import find_interactions
from gitool.interpret.motifs import load_builtin_motifs, ppm, read_motif_file
from gitool.interpret.synthetic import generate, save_store
from gitool.models.base import capture_attention
from gitool.models.can import CAN, CANConfig
from gitool.runs import save_checkpoint

from helpers import assert_input_error, run_cli


@pytest.fixture(scope="module")
def motifs(tmp_path_factory):
    return save_store(tmp_path_factory.mktemp("labels") / "motifs", generate(500, seed=11))


def pwm_can() -> CAN:
    """A CAN whose filters 0-11 are the log-odds matrices of the 12 motifs (centred in the
    19-bp kernel) and whose other filters are zero."""
    torch.manual_seed(0)
    model = CAN(CANConfig(pool=4, activation="relu"))
    with torch.no_grad():
        model.conv.weight.zero_()
        for f, motif in enumerate(load_builtin_motifs()):
            log_odds = np.log2((ppm(motif, 0.01)) / 0.25)  # (k, 4)
            k = motif.length
            left = (19 - k) // 2
            model.conv.weight[f, :, left : left + k] = torch.tensor(log_odds.T, dtype=torch.float32)
    return model.eval()


def save_run(model: torch.nn.Module, path, name: str, data=None):
    """A run folder with ``model``'s checkpoint, trained on ``data`` (a store path) if given."""
    save_checkpoint(
        path / "checkpoints" / "best.pt",
        {"model_name": name, "preset": name, "model_config": dataclasses.asdict(model.config),
         "model": model.state_dict(), "step": 0,
         "data": [{"path": str(data), "head": "tasks", "manifest": {}}] if data else []},
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def result(motifs, tmp_path_factory):
    out = tmp_path_factory.mktemp("inter") / "out"
    return find_interactions(pwm_can(), motifs, out, thresholds=[0.05, 0.1], batch_size=64)


def test_filters_labelled_by_their_motif(result):
    table = result.filters
    names = [m.name for m in load_builtin_motifs()]
    assert list(table["motif"][:12]) == names  # every motif filter finds its own motif
    assert (table["similarity"][:12] > 0.9).all()
    # CEBPB (ATTGCGCAAT), ESR1 and NFIB read (nearly) the same on both strands
    palindromic = table["motif"].isin(["CEBPB", "ESR1", "NFIB"])
    assert (table["strand"][:12][~palindromic[:12]] == "+").all()
    assert (table["motif"][12:] == "").all() and (table["sites"][12:] == 0).all()
    filters = read_motif_file(result.out / "filters.meme")  # MEME file reads back
    assert len(filters) == 32 and filters[0].length == 19


def test_pairs_and_maps(result, motifs):
    from gitool.data.dataset import codes_to_one_hot
    from gitool.data.labels import LabelStore

    store = LabelStore(motifs)
    x = codes_to_one_hot(torch.from_numpy(np.array(store.sequences("test"))))
    model = pwm_can()
    with torch.no_grad(), capture_attention(model) as records:
        model(x)
    head_max = records[0].weights.amax(1)  # (B, T, T)
    off_diagonal = ~torch.eye(head_max.shape[-1], dtype=torch.bool)
    for maps in result.maps:  # pairs: head-max attention ≥ threshold, self-pairs removed
        assert maps.pairs == int(((head_max >= maps.threshold) & off_diagonal).sum())
        assert maps.random_pairs == maps.pairs and maps.sequences == 100
        for matrix in (maps.glifac, maps.local):
            np.testing.assert_array_equal(matrix, matrix.T)
            assert (np.diag(matrix) == 0).all()
        assert np.abs(maps.glifac).max() <= 1
    assert result.maps[0].pairs > result.maps[1].pairs
    for k in range(2):
        g = result.glifac_motifs[k]
        assert g.shape == (12, 12) and np.isnan(np.diag(g)).all()
    truth = {frozenset(p) for p in result.truth}
    names = result.motif_names
    assert truth == {frozenset((names.index(a), names.index(b)))
                     for a, b in (("ELF1", "SIX3"), ("TAL1", "GATA1"), ("ESR1", "FOXN3"),
                                  ("IRF1", "SPI1"))}  # fmt: skip
    scores = result.scores
    assert list(scores["method"]) == (["glifac"] * 3 + ["local"] * 3) * 2
    assert list(scores["level"]) == ["motif", "filter", "filter"] * 4
    assert list(scores["scoring"]) == ["gitool", "gitool", "authors"] * 4
    assert scores[["auroc", "aupr"]].apply(lambda c: c.between(0, 1)).all().all()
    # one filter per motif: the filter pairs are the motif pairs; the authors' scoring also
    # counts the pairs of a labelled with an unlabelled filter as negatives
    ours, authors = scores[scores["scoring"] == "gitool"], scores[scores["scoring"] == "authors"]
    assert (ours["positives"] == 4).all() and (ours["negatives"] == 62).all()
    assert (authors["positives"] == 4).all() and (authors["negatives"] > 62).all()
    for _, both in scores[scores["scoring"] == "gitool"].groupby(["method", "threshold"]):
        np.testing.assert_allclose(both["auroc"].iloc[0], both["auroc"].iloc[1])


def test_output_files(result):
    out = result.out
    for tag in ("t0.05", "t0.1"):
        for name in ("glifac_filters", "local_filters", "glifac_motifs", "local_motifs"):
            frame = pd.read_csv(out / f"{name}_{tag}.tsv", sep="\t", index_col=0)
            size = 32 if "filters" in name else 12
            assert frame.shape == (size, size)
        png = out / f"interactions_{tag}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    glifac = pd.read_csv(out / "glifac_filters_t0.1.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(glifac.to_numpy(), result.maps[1].glifac, rtol=1e-5, atol=1e-9)
    scores = pd.read_csv(out / "scores.tsv", sep="\t")
    assert set(scores.columns) >= {
        "method",
        "scoring",
        "level",
        "threshold",
        "auroc",
        "aupr",
        "snr",
        "pairs",
    }
    assert not list(out.parent.glob(".*"))


def test_warns_when_threshold_is_not_selective(motifs, tmp_path, capsys):
    """Even attention (zero query weights) puts 1/T on every key: a threshold at that level
    selects every pair and says so; one above it selects none and says that."""
    model = pwm_can()
    with torch.no_grad():
        model.attention.to_q.weight.zero_()
        model.attention.to_q.bias.zero_()
    even = 1 / model.config.tokens  # 1/50
    result = find_interactions(model, motifs, tmp_path / "out", thresholds=[even * 0.99, 0.1])
    assert result.maps[0].pairs == 100 * 50 * 49 and result.maps[1].pairs == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "selects most position pairs (245,000 of 245,000" in err
    assert "even attention over 50 keys is 0.02" in err
    assert "no position pair reaches threshold 0.1" in err


def test_warns_about_motifs_no_filter_learned(motifs, tmp_path, capsys):
    """A model without SIX3 and GATA1 filters (the partners of two "and" pairs) cannot show
    those interactions; the warning names the motifs and the lost ground-truth pairs."""
    model = pwm_can()
    names = [m.name for m in load_builtin_motifs()]
    with torch.no_grad():
        for name in ("SIX3", "GATA1"):
            model.conv.weight[names.index(name)].zero_()
    result = find_interactions(model, motifs, tmp_path / "out", thresholds=[0.1])
    assert not {"SIX3", "GATA1"} & set(result.filters["motif"])
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "no filter matches GATA1, SIX3 (min_similarity 0.7), so the maps cannot show "
        "interactions involving them (ELF1/SIX3, TAL1/GATA1 of the ground truth)"
    ) in err
    find_interactions(pwm_can(), motifs, tmp_path / "all", thresholds=[0.1])
    assert "no filter matches" not in capsys.readouterr().err
    # --motifs without SPI1: the IRF1/SPI1 pair cannot be scored, and the warning says so
    others = ",".join(n for n in names if n != "SPI1")
    result = find_interactions(pwm_can(), motifs, tmp_path / "nospi1", thresholds=[0.1],
                               motifs=others)  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert "ground-truth pair(s) IRF1/SPI1 of" in err and "left out of the scores" in err
    assert set(result.scores["positives"][result.scores["level"] == "motif"]) == {3}


def test_swin_layer_channels(tiny, tmp_path):
    from gitool.config import BuildOptions
    from gitool.data.build import build_store
    from gitool.models.registry import create_model

    store = tmp_path / "store"
    build_store(BuildOptions(genome=str(tiny["genome"]), tracks=str(tiny["tracks"]),
                             out=str(store), seq_length=400, bin_size=8, target_length=25,
                             workers=1))  # fmt: skip
    torch.manual_seed(0)
    model = create_model(
        "swin", seq_length=400, target_length=25, bin_size=8, dims=(8, 8, 12, 16),
        windows=(8, 8, 8, 8), attention_heads=(1, 2, 2, 2), transformer_heads=2,
        transformer_key_dim=8, heads={"data": 4},
    ).eval()  # fmt: skip
    result = find_interactions(model, store, tmp_path / "out", layer=3, split="train")
    maps = result.maps[0]
    assert maps.glifac.shape == (12, 12) and maps.pairs > 0  # layer 3: 12 channels
    assert list(result.filters["filter"][:2]) == ["L3.channel0", "L3.channel1"]
    assert result.scores is None and not result.glifac_motifs
    assert (tmp_path / "out" / "glifac_filters_t0.1.tsv").exists()
    assert not (tmp_path / "out" / "glifac_motifs_t0.1.tsv").exists()
    with pytest.raises(InputError, match="^layer 7 is out of range"):
        find_interactions(model, store, tmp_path / "x", layer=7)
    # the shifted block's activations are put back in token order (its input is rolled)
    from gitool.data.dataset import codes_to_one_hot
    from gitool.interpret.interactions import _Source

    source = _Source(model, 3, "--model")
    blocks = {name: m for name, m in model.named_modules() if name.endswith(("regular", "shifted"))}
    block = blocks["trunk.layers.2.shifted"]
    seen = []
    hook = block.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x = codes_to_one_hot(torch.randint(0, 4, (2, 400)))
    try:
        _, parts = source(x)
    finally:
        hook.remove()
    (regular_acts, _, _), (shifted_acts, _, index) = parts
    assert block.attn.shift > 0 and index[0, 0] == block.attn.shift  # slot 0 holds a later token
    with torch.no_grad():
        expected = block.norm(seen[0])  # the block's input, in token order, normalised
    torch.testing.assert_close(shifted_acts, expected)


def test_command_line_and_bad_input(motifs, tmp_path, capsys):
    run = save_run(pwm_can(), tmp_path / "run", "can")
    out = tmp_path / "inter"
    code, stdout, err = run_cli(["interactions", "-m", run, "-d", motifs, "-o", out,
                                 "--threshold", "0.1", "--device", "cpu"], capsys)  # fmt: skip
    assert code == 0, err
    assert "glifac" in stdout and "AUROC" in stdout and "12 of 32 filters match" in err
    assert "scoring" in stdout and "authors" in stdout  # which scoring each row uses
    assert (out / "scores.tsv").exists()
    # --data defaults to the store the run was trained on
    trained = save_run(pwm_can(), tmp_path / "trained", "can", data=motifs)
    code, stdout, err = run_cli(["interactions", "-m", trained, "-o", tmp_path / "own",
                                 "--sequences", "64", "--device", "cpu"], capsys)  # fmt: skip
    assert code == 0, err
    assert "AUROC" in stdout and (tmp_path / "own" / "scores.tsv").exists()
    assert f"using store {motifs} (the run's training store" in " ".join(err.split())
    code, _, err = run_cli(["interactions", "-m", tmp_path / "nope", "-o", tmp_path / "x"], capsys)
    assert_input_error(code, err, f"--model {tmp_path / 'nope'}: no such run folder")
    code, _, err = run_cli(["interactions", "-m", run, "-o", tmp_path / "bad"], capsys)
    assert_input_error(code, err, "records no training store", "--data STORE")
    assert not (tmp_path / "bad").exists()
    # `gitool attention` reads label stores too (sequence SPLIT:i, bp from 0)
    code, _, err = run_cli(["attention", "-m", run, "--data", motifs, "--index", "0,2", "-o",
                            tmp_path / "att"], capsys)  # fmt: skip
    assert code == 0, err
    from gitool.interpret.attention import load_window

    arrays = load_window(tmp_path / "att" / "index.json", 1)
    assert arrays["L1.attention/weights"].shape == (8, 50, 50)
    np.testing.assert_array_equal(arrays["L1.attention/token_start"][:3], [0, 4, 8])
    bad_meme = tmp_path / "bad.meme"
    bad_meme.write_text("hello\n")
    for args, needle in (
        (["--threshold", "1.5"], "--threshold must be 0 to 1, got 1.5"),
        (["--threshold", "0.2", "--threshold", "0.2"], "--threshold values repeat: 0.2, 0.2"),
        (["--threshold", "0.05", "--threshold", "0.0500000001"], "values repeat: 0.05, 0.05"),
        (["--motifs", "NOPE"], "--motifs unknown motif name(s) 'NOPE'"),
        (["--motifs", bad_meme], f"--motifs {bad_meme}"),
        (["--min-similarity", "0"], "--min-similarity must be > 0 and <= 1, got 0"),
        (
            ["--random-pairs", "all"],
            "--random-pairs 'all': choose auto, sample, distance, expected, none",
        ),
        (
            ["--layer", "2"],
            "--layer 2 is out of range; this model has attention layers 1 (layer 1: 4-bp tokens)",
        ),
        (["--split", "dev"], "--split 'dev' is unknown"),
        (["--which", "middle"], "--which 'middle': choose best or last"),
        (["--sequences", "0"], "--sequences must be >= 1, got 0"),
    ):
        code, _, err = run_cli(["interactions", "-m", run, "-d", motifs, "-o", tmp_path / "bad",
                                *args], capsys)  # fmt: skip
        assert_input_error(code, err, needle)
        assert not (tmp_path / "bad").exists()
    code, _, err = run_cli(["interactions", "-m", run, "-d", motifs, "-o", out], capsys)
    assert_input_error(code, err, "already exists; pass --force")
    # a model without attention
    from gitool.models.registry import create_model

    cnn = create_model("cnn-maxpool", seq_length=400, target_length=25, bin_size=8,
                       stem_channels=8, channels=16, divisible_by=4)  # fmt: skip
    code, _, err = run_cli(["interactions", "-m", save_run(cnn, tmp_path / "cnn", "cnn-maxpool"),
                            "-d", motifs, "-o", tmp_path / "bad"], capsys)  # fmt: skip
    assert_input_error(code, err, "has no attention layers")
    # a store of another sequence length
    other = save_store(tmp_path / "long", generate(20, seed=1, length=300))
    code, _, err = run_cli(["interactions", "-m", run, "-d", other, "-o", tmp_path / "bad"], capsys)
    assert_input_error(code, err, "sequences of 300 bp but the model takes 200 bp")


def test_force_replaces_only_a_previous_output(tmp_path, capsys):
    store = save_store(tmp_path / "store", generate(40, seed=2))
    run = save_run(pwm_can(), tmp_path / "run", "can")
    args = ["interactions", "-m", run, "-d", store, "--device", "cpu", "--no-plot", "--force"]
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    code, _, err = run_cli([*args, "-o", precious], capsys)
    assert_input_error(code, err, f"-o {precious} is a non-empty folder that is not the output "
                       "of a previous `gitool interactions`", "even with --force")  # fmt: skip
    assert [p.name for p in precious.iterdir()] == ["thesis.txt"]
    out = tmp_path / "out"
    for _ in range(2):  # new, then its own previous output
        code, _, err = run_cli([*args, "-o", out], capsys)
        assert code == 0, err
    (out / "notes.txt").write_text("mine")  # the user's file in it: no longer replaceable
    code, _, err = run_cli([*args, "-o", out], capsys)
    assert_input_error(code, err, "also holds notes.txt, which gitool did not write there")
    assert (out / "notes.txt").exists() and (out / "filters.tsv").exists()
    (out / "notes.txt").unlink()
    with open(out / "scores.tsv", "a") as handle:  # the user's own rows
        handle.write("my\tnotes\n")
    code, _, err = run_cli([*args, "-o", out], capsys)
    assert_input_error(code, err, "also holds scores.tsv", "or which was changed since")
    assert (out / "scores.tsv").read_text().endswith("my\tnotes\n")


def test_damaged_ground_truth_fails_before_the_passes(tmp_path, capsys):
    store = save_store(tmp_path / "store", generate(40, seed=2))
    run = save_run(pwm_can(), tmp_path / "run", "can")
    (store / "interactions.tsv").write_text("task_a\ttask_b\tkind\nELF1\tSIX3\tbogus\n")
    code, _, err = run_cli(["interactions", "-m", run, "-d", store, "-o", tmp_path / "out",
                            "--device", "cpu"], capsys)  # fmt: skip
    assert_input_error(code, err, f"{store / 'interactions.tsv'}:2: kind 'bogus'")
    assert not (tmp_path / "out").exists()


def test_expected_random_pairs_find_the_planted_motifs_without_a_seed(motifs, tmp_path):
    """random_pairs="expected" needs no seed: two seeds give the same maps, and the PWM
    model's filters are labelled as with sampled pairs."""
    runs = [
        find_interactions(
            pwm_can(),
            motifs,
            tmp_path / f"e{seed}",
            thresholds=[0.05],
            seed=seed,
            random_pairs="expected",
            plot=False,
        )  # fmt: skip
        for seed in (0, 1)
    ]
    a, b = (r.maps[0] for r in runs)
    np.testing.assert_array_equal(a.glifac, b.glifac)
    assert a.random_pairs == a.pairs > 0
    sampled = find_interactions(pwm_can(), motifs, tmp_path / "s", thresholds=[0.05], plot=False)
    assert list(runs[0].filters["motif"]) == list(sampled.filters["motif"])
    assert not np.array_equal(sampled.maps[0].glifac, a.glifac)


def test_output_never_replaces_an_input(tmp_path, capsys):
    """-o is claimed before the passes: with --force an earlier output is replaced, but not
    one that holds an input (its filters.meme given as --motifs), nor the store itself."""
    store = save_store(tmp_path / "store", generate(40, seed=2))
    run = save_run(pwm_can(), tmp_path / "run", "can")
    args = ["interactions", "-m", run, "-d", store, "--device", "cpu", "--no-plot", "--force"]
    out = tmp_path / "out"
    code, _, err = run_cli([*args, "-o", out], capsys)
    assert code == 0, err
    meme = (out / "filters.meme").read_text()
    code, _, err = run_cli([*args, "-o", out, "--motifs", out / "filters.meme"], capsys)
    assert_input_error(code, err, f"-o {out} holds {out / 'filters.meme'}, one of this "
                       "command's inputs", "even with --force")  # fmt: skip
    assert (out / "filters.meme").read_text() == meme
    for target, words in ((store, "is one of this command's inputs"),
                          (store / "train", "lies inside")):  # fmt: skip
        code, _, err = run_cli([*args, "-o", target], capsys)
        assert_input_error(code, err, f"-o {target} {words}")
    assert LabelStore(store).count("train") == 28


def test_options_name_fields_and_check_ranges_first():
    from gitool.config.interactions import InteractionsOptions

    assert InteractionsOptions(model="run").threshold == (0.1,)
    for kwargs, message in (
        ({"threshold": (0.1, 1.5)}, "^threshold must be 0 to 1, got 1.5$"),
        ({"threshold": ()}, "^threshold needs at least one value$"),
        ({"min_similarity": 0.0}, "^min_similarity must be > 0 and <= 1, got 0.0$"),
        ({"batch_size": 0}, "^batch_size must be >= 1, got 0$"),
        (
            {"random_pairs": "all"},
            "^random_pairs 'all': choose auto, sample, distance, expected, none$",
        ),
    ):
        with pytest.raises(InputError, match=message):
            InteractionsOptions(model="run", **kwargs)


def test_sequences_caps_the_last_batch(motifs, tmp_path):
    """--sequences 10 at batch 8 reads 10 sequences, not two whole batches (16)."""
    ten = find_interactions(pwm_can(), motifs, tmp_path / "ten", sequences=10, batch_size=8,
                            plot=False)  # fmt: skip
    also = find_interactions(pwm_can(), motifs, tmp_path / "also", sequences=10, batch_size=5,
                             plot=False)  # fmt: skip
    assert ten.maps[0].sequences == also.maps[0].sequences == 10
    assert ten.maps[0].pairs == also.maps[0].pairs
