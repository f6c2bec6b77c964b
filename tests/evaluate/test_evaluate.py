"""``gitool evaluate`` (library): the paper's per-track metric against numpy, Table 1
grouping, written files and plots, and every bad-input path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

from gitool.config import BuildOptions
from gitool.config.evaluate import EvaluateOptions
from gitool.data.build import build_store
from gitool.data.genome import one_hot
from gitool.data.store import Store
from gitool.errors import InputError
from gitool.evaluate import coverage
from gitool.evaluate.tables import GROUP_COLUMNS, OVERALL, TRACK_COLUMNS, summary_table
from gitool.made import RECORD
from gitool.metrics import EPS
from gitool.models.registry import create_model
from gitool.runs import save_checkpoint, training_store

from helpers import assert_input_error, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# 400 bp → 8-bp tokens after 3 poolings (50 tokens) → crop 25 bins.
TINY_MODEL = dict(
    seq_length=400,
    target_length=25,
    bin_size=8,
    stem_channels=8,
    channels=16,
    divisible_by=4,
    heads={"tiny": 4},
)


def make_store(tiny) -> Store:
    out = tiny["dir"] / "store"
    build_store(
        BuildOptions(
            genome=str(tiny["genome"]),
            tracks=str(tiny["tracks"]),
            out=str(out),
            seq_length=400,
            bin_size=8,
            target_length=25,
            workers=1,
        )
    )
    return Store(out)


def make_run(folder: Path, store: Store | None, seed: int = 0, which: str = "best", **config):
    """A run folder with a hand-made checkpoint of a tiny random ``cnn-maxpool``."""
    torch.manual_seed(seed)
    model = create_model("cnn-maxpool", **{**TINY_MODEL, **config})
    heads = model.config.heads
    data = []
    if store is not None:
        data = [{"path": str(store.path), "head": h, "manifest": store.manifest} for h in heads]
    save_checkpoint(
        folder / "checkpoints" / f"{which}.pt",
        {
            "model_name": "cnn-maxpool",
            "preset": "cnn-maxpool",
            "model_config": dataclasses.asdict(model.config),
            "model": model.state_dict(),
            "step": 0,
            "data": data,
        },
    )
    return model.eval(), folder


def evaluate(run, data=None, *, compare=None, out=None, plot_tracks=None, **options):
    """:func:`gitool.evaluate.coverage.evaluate` with the options as arguments."""
    if isinstance(compare, (str, Path)):
        compare = [compare]
    if isinstance(plot_tracks, list):
        plot_tracks = ",".join(plot_tracks)
    return coverage.evaluate(
        EvaluateOptions(
            model=str(run), data=None if data is None else str(data), out=None if out is None
            else str(out), compare=None if compare is None else tuple(map(str, compare)),
            plot_tracks=plot_tracks, **options,
        )
    )  # fmt: skip


@pytest.fixture
def setup(tiny):
    store = make_store(tiny)
    model, run = make_run(tiny["dir"] / "run", store)
    return store, model, run


def numpy_reference(model, store: Store, split: str, head: str = "tiny"):
    """Pearson / R² / Poisson per track over every bin of every window, with numpy."""
    x = torch.from_numpy(one_hot(np.asarray(store.sequences(split))))
    with torch.no_grad():
        pred = model(x, head).numpy().astype(np.float64)  # (N, T, n_tracks)
    obs = np.asarray(store.targets(split), dtype=np.float64)
    n_tracks = obs.shape[-1]
    p, y = pred.reshape(-1, n_tracks), obs.reshape(-1, n_tracks)  # (N·T, n_tracks)
    pearson = np.array([np.corrcoef(p[:, t], y[:, t])[0, 1] for t in range(n_tracks)])
    r2 = 1 - ((p - y) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    poisson = (p - y * np.log(p + EPS)).mean(0)
    return pearson, r2, poisson


def test_metrics_match_numpy_over_all_windows_and_bins(setup):
    store, model, run = setup
    n = store.count("test")
    assert n > 3  # several batches of 3, the last one partial
    result = evaluate(run, store.path, split="test", batch_size=3, device="cpu")
    pearson, r2, poisson = numpy_reference(model, store, "test")
    table = result.tracks
    assert list(table.columns) == list(TRACK_COLUMNS)
    assert list(table["identifier"]) == ["plus", "minus", "dense", "sparse"]
    # atol: a correlation near 0 (here -0.03) moves by ~1e-6 with the float32 batching
    np.testing.assert_allclose(table["pearson"], pearson, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["r2"], r2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["poisson"], poisson, rtol=1e-5, atol=1e-6)
    # Not the per-window average, nor the correlation across tracks (enformer-pytorch #36).
    x = torch.from_numpy(one_hot(np.asarray(store.sequences("test"))))
    with torch.no_grad():
        pred = model(x, "tiny").numpy()
    obs = np.asarray(store.targets("test"), dtype=np.float32)
    per_window = np.mean([np.corrcoef(pred[i, :, 2], obs[i, :, 2])[0, 1] for i in range(n)])
    assert abs(per_window - table["pearson"][2]) > 1e-4
    assert (result.head, result.n_windows, result.target_length) == ("tiny", n, 25)


def test_grouping_summary_and_files(setup):
    store, model, run = setup
    result = evaluate(run, store.path, split="valid", device="cpu")
    # tiny: plus/minus RNA → other, dense DNASE → DNASE/ATAC, sparse CHIP → CHIP, no CAGE.
    table = result.tracks.set_index("identifier")
    assert table.loc[["plus", "minus", "dense", "sparse"], "group"].tolist() == [
        "RNA",
        "RNA",
        "DNASE",
        "CHIP",
    ]
    row = result.summary.loc["run"]
    assert row["DNASE/ATAC"] == pytest.approx(table.loc["dense", "pearson"])
    assert row["CHIP"] == pytest.approx(table.loc["sparse", "pearson"])
    assert row["other"] == pytest.approx(table.loc[["plus", "minus"], "pearson"].mean())
    assert np.isnan(row["CAGE"]) and row["n_CAGE"] == 0
    assert row[OVERALL] == pytest.approx(table["pearson"].mean())
    assert row["n_OVERALL"] == 4
    assert result.other_groups == ["RNA"]

    # Files: RUN/eval/valid.tsv and valid.summary.tsv, re-read equal.
    assert result.paths["tracks"] == run / "eval" / "valid.tsv"
    assert result.paths["summary"] == run / "eval" / "valid.summary.tsv"
    back = pd.read_csv(result.paths["tracks"], sep="\t")
    assert list(back.columns) == list(TRACK_COLUMNS)
    np.testing.assert_allclose(back["pearson"], result.tracks["pearson"], rtol=1e-5)
    summary = pd.read_csv(result.paths["summary"], sep="\t", index_col="model")
    assert list(summary.columns[:5]) == [*GROUP_COLUMNS, OVERALL]
    assert summary.loc["run", OVERALL] == pytest.approx(row[OVERALL], rel=1e-5)
    assert np.isnan(summary.loc["run", "CAGE"])
    assert [p.name for p in (run / "eval").glob(".*")] == [RECORD]  # no temporary files

    # The printed table: Table 1 columns, — for the empty CAGE group.
    console = Console(record=True, width=200)
    console.print(summary_table(result.summary, caption=result.caption()))
    text = console.export_text()
    for word in (*GROUP_COLUMNS, OVERALL, "—", f"{row[OVERALL]:.4f}", "other = RNA"):
        assert word in text, word


def test_compare_and_window_plots(setup, tiny):
    store, model, run = setup
    _, other = make_run(tiny["dir"] / "other", store, seed=1)
    out = tiny["dir"] / "results" / "swin.tsv"
    result = evaluate(
        run, store.path, split="test", device="cpu", out=out, compare=other, plot_window=1
    )
    assert result.paths["tracks"] == out
    assert result.paths["summary"] == out.with_name("swin.summary.tsv")
    assert list(result.summary.index) == ["run", "other"]
    assert list(result.compared) == ["other"]
    other_pearson, _, _ = numpy_reference(
        make_run(tiny["dir"] / "again", None, seed=1)[0], store, "test"
    )
    np.testing.assert_allclose(
        result.compared["other"]["pearson"], other_pearson, rtol=1e-5, atol=1e-7
    )
    tracks = pd.read_csv(result.paths["compare_tracks:other"], sep="\t")
    assert tracks.shape == (4, len(TRACK_COLUMNS))
    for key, name in (("compare_plot:other", "swin.compare.other.png"),
                      ("window_plot", "swin.window1.png")):  # fmt: skip
        path = result.paths[key]
        assert path == out.with_name(name)
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000


def test_several_compared_runs(setup, tiny):
    store, _, run = setup
    _, other = make_run(tiny["dir"] / "other", store, seed=1)
    _, third = make_run(tiny["dir"] / "third", store, seed=2)
    out = tiny["dir"] / "table"
    result = evaluate(run, store.path, device="cpu", out=out, compare=[other, third, other])
    assert list(result.summary.index) == ["run", "other", "third", f"other ({other})"]
    assert len(result.compared) == 3
    for name in ("other", "third"):
        assert (out / f"test.compare.{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert (out / f"test.compare.{name}.tsv").exists()
    summary = pd.read_csv(out / "test.summary.tsv", sep="\t", index_col=0)
    assert len(summary) == 4


def test_out_folder_checkpoint_file_last_and_explicit_head(setup, tiny):
    store, _, run = setup
    result = evaluate(run, store.path, split="valid", device="cpu", out=tiny["dir"] / "res")
    assert result.paths["tracks"] == tiny["dir"] / "res" / "valid.tsv"
    assert result.paths["summary"] == tiny["dir"] / "res" / "valid.summary.tsv"
    _, run = make_run(tiny["dir"] / "lastonly", store, which="last")
    result = evaluate(run / "checkpoints" / "last.pt", store.path, head="tiny", device="cpu")
    assert result.paths["tracks"] == run / "eval" / "test.last.tsv"
    assert result.name == "lastonly:last"


def test_head_chosen_by_training_tracks(setup, tiny):
    store, _, _ = setup
    _, run = make_run(tiny["dir"] / "two", None, heads={"human": 4, "mouse": 4})
    with pytest.raises(InputError, match="several heads .*choose it with head"):
        evaluate(run, store.path, device="cpu")
    # The checkpoint says the mouse head was trained on this store's tracks.
    _, run = make_run(tiny["dir"] / "two", None, heads={"human": 4, "mouse": 4})
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    state["data"] = [{"path": str(store.path), "head": "mouse", "manifest": store.manifest}]
    save_checkpoint(run / "checkpoints" / "best.pt", state)
    assert evaluate(run, store.path, device="cpu").head == "mouse"


def test_bad_inputs(setup, tiny):
    store, _, run = setup
    d = tiny["dir"]
    (d / "afile").write_text("")
    cases = [
        (dict(data=d / "missing"), "no such folder"),
        (dict(data=tiny["genome"]), "is a file, not a store"),
        (dict(data=d), "not a gitool store"),
        (dict(split="dev"), "^split 'dev' is unknown"),
        (dict(head="mouse"), "^head 'mouse' is not a head of run"),
        (dict(which="first"), "^which 'first'"),
        (dict(batch_size=0), "^batch_size must be >= 1, got 0"),
        (dict(plot_window=-1), "^plot_window must be >= 0, got -1"),
        (dict(plot_window=10_000), "^plot_window 10000 is out of range"),
        (dict(plot_window=0, plot_tracks=["nope"]), "^plot_tracks 'nope' is neither"),
        (dict(device="gpu0"), "^device 'gpu0'"),
        (dict(out=d / "afile" / "x.tsv"), "afile is a file, not a folder"),
        (dict(out=tiny["genome"] / "x.tsv"), "genome.fa, one of this command's inputs"),
    ]
    if not torch.cuda.is_available():
        cases.append((dict(device="cuda"), "no CUDA GPU"))
    for options, words in cases:
        with pytest.raises(InputError, match=words):
            evaluate(run, **{"data": store.path, "device": "cpu", **options})
    with pytest.raises(InputError, match="no such run folder"):
        evaluate(d / "norun", store.path, device="cpu")
    _, wrong = make_run(d / "three", None, heads={"tiny": 3})
    with pytest.raises(InputError, match="predicts 3 tracks but .* has 4 tracks"):
        evaluate(wrong, store.path, device="cpu")
    _, wrong = make_run(d / "long", None, seq_length=800)
    with pytest.raises(InputError, match="800-bp input windows .*seq_length.* has 400"):
        evaluate(wrong, store.path, device="cpu")
    _, wrong = make_run(d / "bins", None, target_length=20)
    with pytest.raises(InputError, match="target_length.*--target-length 20"):
        evaluate(wrong, store.path, device="cpu")
    with pytest.raises(InputError, match="--compare .*predicts 3 tracks|predicts 3 tracks"):
        evaluate(run, store.path, device="cpu", compare=d / "three")


def test_corrupt_and_truncated_checkpoints(setup, tiny):
    store, _, run = setup
    best = run / "checkpoints" / "best.pt"
    data = best.read_bytes()
    for keep in (0.1, 0.5, 0.9):  # torch fails differently depending on where it is cut
        best.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(InputError, match="corrupt.* truncated"):
            evaluate(run, store.path, device="cpu")
    best.write_bytes(b"chr1\t0\t100\n" * 10)  # a BED given as the model
    with pytest.raises(InputError, match=r"is not a checkpoint \(not a file written by torch"):
        evaluate(run, store.path, device="cpu")
    with open(best, "wb") as handle:  # an .npz given as the model: "corrupt or truncated"
        np.savez(handle, weights=np.zeros(2))
    with pytest.raises(InputError, match=r"is not a checkpoint \(a zip archive, but not one torch"):
        evaluate(run, store.path, device="cpu")
    torch.save({"weights": torch.zeros(2)}, best)
    with pytest.raises(InputError, match="not a gitool checkpoint"):
        evaluate(run, store.path, device="cpu")
    best.write_bytes(data)
    with pytest.raises(InputError, match="^compare .*nope: no such run folder"):
        evaluate(run, store.path, device="cpu", compare=tiny["dir"] / "nope")
    assert not (run / "eval").exists()  # nothing written on failure


def test_data_defaults_to_the_runs_training_store(setup, tiny, capsys):
    store, _, run = setup
    assert training_store(run) == store.path
    code, out, err = run_cli(["evaluate", "-m", run, "--device", "cpu"], capsys)
    assert code == 0, err
    assert "OVERALL" in out
    assert (run / "eval" / "test.tsv").exists()
    assert f"using store {store.path} (the run's training store; give --data STORE" in " ".join(
        err.split()
    )  # the default is printed when chosen
    code, _, err = run_cli(["evaluate", "-m", run, "-d", store.path, "--device", "cpu",
                            "--force"], capsys)  # fmt: skip
    assert code == 0 and "using store" not in err
    code, _, err = run_cli(["evaluate", "-m", tiny["dir"] / "nope", "--device", "cpu"], capsys)
    assert_input_error(code, err, f"--model {tiny['dir'] / 'nope'}: no such run folder")
    # Trained on no recorded store, or on one that has moved: say so and ask for --data.
    _, bare = make_run(tiny["dir"] / "bare", None)
    code, _, err = run_cli(["evaluate", "-m", bare, "--device", "cpu"], capsys)
    assert_input_error(code, err, "records no training store", "--data STORE")
    best = bare / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    entry = {"path": str(store.path), "head": "human", "manifest": store.manifest}
    for data, expected in (
        (None, "records no training store"),
        ([{"head": "human"}], "records no training store"),
        ([entry, {**entry, "head": "mouse"}], store.path),  # one store, two heads
        ([entry, {**entry, "path": str(tiny["dir"])}], "trained on 2 stores"),
    ):
        save_checkpoint(best, {**state, "data": data})
        if isinstance(expected, Path):
            assert training_store(bare) == expected
        else:
            with pytest.raises(InputError, match=expected):
                training_store(bare)
    store.path.rename(tiny["dir"] / "moved")
    code, _, err = run_cli(["evaluate", "-m", run, "--device", "cpu"], capsys)
    assert_input_error(code, err, str(store.path), "no longer there", "--data STORE")
    assert not (bare / "eval").exists()


def test_outputs_need_force_are_replaced_only_when_gitools_and_never_an_input(setup, tiny, capsys):
    store, _, run = setup
    base = ["evaluate", "-m", run, "--device", "cpu", "--split", "valid"]
    code, _, err = run_cli(base, capsys)
    assert code == 0, err
    tsv = run / "eval" / "valid.tsv"
    first = tsv.read_bytes()
    code, _, err = run_cli(base, capsys)
    assert_input_error(code, err, f"-o {tsv} already exists; pass --force to replace it")
    code, _, err = run_cli([*base, "--force"], capsys)
    assert code == 0, err
    assert tsv.read_bytes() == first
    # a table edited by hand since is the user's: kept even with --force
    tsv.write_text("track\tpearson\nedited by hand\t0\n")
    code, _, err = run_cli([*base, "--force"], capsys)
    assert_input_error(code, err, f"-o {tsv} exists and gitool did not make it", "--force")
    assert tsv.read_text() == "track\tpearson\nedited by hand\t0\n"
    tsv.unlink()

    # A plot path holding a file gitool did not write is refused even with --force.
    png = run / "eval" / "valid.window0.png"
    png.write_text("not a picture")
    code, _, err = run_cli([*base, "--plot-window", "0", "--force"], capsys)
    assert_input_error(code, err, f"-o {png} exists and gitool did not make it", "--force")
    assert png.read_text() == "not a picture"

    # The store, the files it was built from and the run's checkpoints: never.
    for out in (store.path, run / "checkpoints", tiny["dir"] / "genome.fa"):
        for force in ([], ["--force"]):
            code, _, err = run_cli([*base, "-o", out, *force], capsys)
            assert_input_error(code, err, "-o ", "one of this command's inputs")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt"]
    assert not list(store.path.glob("valid.*"))


def test_out_of_range_options_name_the_flag(setup, capsys, tmp_path):
    _, _, run = setup
    for options, needle in [
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--plot-window", "-1"], "--plot-window must be >= 0, got -1"),
        (["--plot-window", "100000"], "--plot-window 100000 is out of range: the test split"),
    ]:
        code, _, err = run_cli(["evaluate", "-m", run, "-o", tmp_path / "e", *options], capsys)
        assert_input_error(code, err, needle)
    assert not (tmp_path / "e").exists()


def test_compared_runs_whose_names_clean_up_alike_get_their_own_files(tmp_path):
    from types import SimpleNamespace

    from gitool.evaluate.coverage import _plan_outputs

    subjects = [SimpleNamespace(name=n) for n in ("swin", "cnn a", "cnn_a", "cnn/a")]
    paths = _plan_outputs(tmp_path / "test.tsv", subjects, None)
    tables = [p.name for k, p in paths.items() if k.startswith("compare_tracks:")]
    assert tables == [
        "test.compare.cnn_a.tsv",
        "test.compare.cnn_a-2.tsv",
        "test.compare.cnn_a-3.tsv",
    ]


def test_summary_table_shows_a_models_own_track_count_where_it_differs():
    import pandas as pd
    from rich.console import Console

    row = {col: 0.5 for col in (*GROUP_COLUMNS, OVERALL)}
    counts = {f"n_{col}": 2 for col in (*GROUP_COLUMNS, OVERALL)}
    summary = pd.DataFrame(
        [{**row, **counts}, {**row, **counts, "n_CHIP": 1, f"n_{OVERALL}": 7}],
        index=pd.Index(["a", "b"], name="model"),
    )
    console = Console(width=200, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "0.5000 (1)" in text and "0.5000 (7)" in text and "(n): tracks averaged" in text
    console = Console(width=200, record=True)
    console.print(summary_table(summary.iloc[:1]))
    assert "(n)" not in console.export_text()


def test_a_compressed_table_name_is_a_file_name_not_a_folder():
    from gitool.evaluate.outputs import tsv_path

    ckpt = "/runs/a/checkpoints/best.pt"
    assert tsv_path("/runs/a", ckpt, "test", "res.tsv.gz") == Path("res.tsv.gz")  # then refused
    assert tsv_path("/runs/a", ckpt, "test", "R.TSV") == Path("R.TSV")
    assert tsv_path("/runs/a", ckpt, "test", "out") == Path("out/test.tsv")
    assert tsv_path("/nonexistent", ckpt, "valid", None) == Path("/runs/a/eval/valid.tsv")


def test_a_store_listing_the_same_tracks_in_another_order_is_matched_by_identifier(
    setup, tiny, capsys
):
    """A store built from the same tracks table with its rows in another order labelled the
    model's columns with the wrong tracks (one warning, exit 0)."""
    store, _, run = setup
    table = pd.read_csv(tiny["tracks"], sep="\t")
    shuffled = table.iloc[[2, 3, 1, 0]].reset_index(drop=True)
    shuffled["index"] = range(4)
    shuffled["strand_pair"] = [0, 1, 3, 2]  # dense, sparse, minus, plus
    shuffled.to_csv(tiny["dir"] / "shuffled.txt", sep="\t", index=False)
    out = tiny["dir"] / "shuffled"
    build_store(BuildOptions(genome=str(tiny["genome"]), tracks=str(tiny["dir"] / "shuffled.txt"),
                             out=str(out), seq_length=400, bin_size=8, target_length=25,
                             workers=1))  # fmt: skip
    capsys.readouterr()
    before = evaluate(run, store.path, split="test", device="cpu", out=tiny["dir"] / "a").tracks
    after = evaluate(run, out, split="test", device="cpu", out=tiny["dir"] / "b").tracks
    assert "matching them by identifier" in capsys.readouterr().err
    assert list(after["identifier"]) == ["dense", "sparse", "minus", "plus"]
    for column in ("pearson", "r2", "poisson"):
        expected = before.set_index("identifier")[column].loc[after["identifier"]]
        np.testing.assert_allclose(after[column], expected, rtol=1e-6)
