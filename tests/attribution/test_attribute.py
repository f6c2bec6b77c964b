"""``gitool attribute``: each method against what it must satisfy (saliency = the autograd
gradient, integrated gradients and DeepLIFT/SHAP add up to the output difference, ISM equals
``gitool variants --ism``), the files (npz, per-base bigWig, logos) and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import torch

from gitool.attribution.attribute import Target, attribute_windows, check_method, parse_bins
from gitool.errors import InputError
from gitool.interpret.windows import AttentionWindow

from fixture_models import make_run
from helpers import assert_input_error, run_cli


def windows(tiny, n: int = 3) -> list[AttentionWindow]:
    from gitool.data.genome import Genome

    genome = Genome(tiny["genome"])
    out = [AttentionWindow(f"w{i}", "chr1", 500 + 700 * i, genome.codes("chr1", 500 + 700 * i,
           900 + 700 * i)) for i in range(n)]  # fmt: skip
    genome.close()
    return out


def write_bed(path: Path, rows: list[tuple]) -> Path:
    path.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in rows))
    return path


def test_saliency_is_the_corrected_gradient_of_the_summed_target_bins(tiny):
    """The gradient minus its mean over the four bases at each position (the correction for
    one-hot inputs of Majdandzic, Rajesh & Koo 2023)."""
    model, _ = make_run(tiny)
    result = attribute_windows(model, "tiny", windows(tiny), [0, 2], ["plus", "dense"],
                               method="saliency", bins=[10, 11, 12], device="cpu")  # fmt: skip
    x = torch.from_numpy(np.eye(5, 4, dtype=np.float32)[result.sequence]).requires_grad_()
    y = model(x, "tiny")[:, 10:13, 2].sum()
    (grad,) = torch.autograd.grad(y, x)
    corrected = grad - grad.mean(2, keepdim=True)
    np.testing.assert_allclose(result.hypothetical[:, 1], corrected.numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(result.hypothetical.sum(-1), 0, atol=1e-6)
    assert result.hypothetical.shape == (3, 2, 400, 4)
    np.testing.assert_allclose(
        result.output[:, 1], model(x, "tiny")[:, 10:13, 2].sum(1).detach().numpy(), rtol=1e-5
    )


def test_a_regions_target_is_its_own_bins_by_every_method(tiny):
    """A BED region shorter than the target span: the target sums the region's bins (40 bp:
    5 of 8 bp), not the predictions past its end; --bins still counts from its start."""
    model, _ = make_run(tiny)
    spans = [  # a 40-bp region (5 bins), a 37-bp one (5 bins, snapped) and a whole window
        AttentionWindow(w.name, w.chrom, w.start, w.codes, w.start + 100, w.start + 100 + n)
        for w, n in zip(windows(tiny), (40, 37, 200), strict=True)
    ]
    x = torch.from_numpy(np.eye(5, 4, dtype=np.float32)[np.stack([w.codes for w in spans])])
    with torch.no_grad():
        y = model(x, "tiny")[:, :, 1]  # (3, 25) track "minus"
    want = torch.stack([y[0, :5].sum(), y[1, :5].sum(), y[2].sum()]).numpy()
    for method in ("saliency", "integrated-gradients", "deepliftshap"):
        got = attribute_windows(model, "tiny", spans, [1], ["minus"], method=method, steps=128,
                                shuffles=4, device="cpu")  # fmt: skip
        assert got.target_mask.sum(1).tolist() == [5, 5, 25] and got.bin_size == 8
        np.testing.assert_allclose(got.output[:, 0], want, rtol=1e-5)
        if method != "saliency":  # the contributions add up to the region's own output
            assert np.abs(got.delta).max() < 0.02 * np.abs(got.output).max()
    x.requires_grad_()
    (grad,) = torch.autograd.grad(model(x, "tiny")[0, :5, 1].sum(), x)
    saliency = attribute_windows(model, "tiny", spans, [1], ["minus"], method="saliency",
                                 device="cpu")  # fmt: skip
    np.testing.assert_allclose(
        saliency.hypothetical[0, 0], (grad - grad.mean(2, keepdim=True))[0].numpy(), rtol=1e-4,
        atol=1e-7,
    )  # fmt: skip
    chosen = attribute_windows(model, "tiny", spans, [1], ["minus"], method="saliency",
                               bins=[10, 11], device="cpu")  # fmt: skip
    assert chosen.target_mask.sum(1).tolist() == [2, 2, 2] and chosen.target_mask[:, 10:12].all()
    np.testing.assert_allclose(chosen.output[:, 0], y[:, 10:12].sum(1).numpy(), rtol=1e-5)


def test_integrated_gradients_and_deepliftshap_add_up_to_the_output_difference(tiny):
    model, _ = make_run(tiny)
    ig = attribute_windows(model, "tiny", windows(tiny), [0, 3], ["plus", "sparse"],
                           method="integrated-gradients", steps=256, device="cpu")  # fmt: skip
    target = Target(model.eval(), "tiny", [0, 3])
    with torch.no_grad():
        base = target(torch.zeros(1, 400, 4))[0].numpy()
    change = ig.output - base
    observed = ig.observed.sum(-1)  # Σ over positions of hypothetical · one-hot
    np.testing.assert_allclose(observed - change, ig.delta, atol=1e-4)
    assert np.abs(ig.delta).max() < 0.02 * np.abs(change).max()

    before = {k: v.clone() for k, v in model.state_dict().items()}
    deep = attribute_windows(model, "tiny", windows(tiny), [0, 3], ["plus", "sparse"],
                             method="deepliftshap", shuffles=8, device="cpu")  # fmt: skip
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training  # batch norm statistics untouched, eval mode kept
    assert np.abs(deep.delta).max() < 1e-3 * max(np.abs(deep.output).max(), 1.0)
    again = attribute_windows(model, "tiny", windows(tiny), [0, 3], ["plus", "sparse"],
                              method="deepliftshap", shuffles=8, device="cpu")  # fmt: skip
    np.testing.assert_array_equal(deep.hypothetical, again.hypothetical)  # seeded references


def test_uniform_baseline_references_per_window_and_the_callers_model_state(tiny):
    model, _ = make_run(tiny)
    model.train()
    ig = attribute_windows(model, "tiny", windows(tiny), [1], ["minus"], steps=256,
                           method="integrated-gradients", baseline="uniform", device="cpu")  # fmt: skip
    assert model.training  # the caller's mode is given back
    model.eval()
    with torch.no_grad():
        base = Target(model, "tiny", [1])(torch.full((1, 400, 4), 0.25))[0].numpy()
    change = ig.output - base
    np.testing.assert_allclose(ig.observed.sum(-1) - change, ig.delta, atol=1e-4)
    assert np.abs(ig.delta).max() < 0.02 * np.abs(change).max()

    one = attribute_windows(model, "tiny", windows(tiny), [1], ["minus"], method="deepliftshap",
                            shuffles=4, batch_size=1, device="cpu")  # fmt: skip
    three = attribute_windows(model, "tiny", windows(tiny), [1], ["minus"],
                              method="deepliftshap", shuffles=4, batch_size=3, device="cpu")  # fmt: skip
    np.testing.assert_allclose(one.hypothetical, three.hypothetical, atol=1e-6)

    gap = windows(tiny, 1)[0]
    gap.codes[10:20] = 4
    with pytest.raises(InputError, match="holds N"):
        attribute_windows(model, "tiny", [gap], [1], ["minus"], method="deepliftshap",
                          device="cpu")  # fmt: skip


def test_uniform_baseline_adds_up_for_windows_with_n(tiny):
    """The uniform baseline is 0 at N, where the input is 0: the observed contributions (0
    at N) then add up to the output's change. At 0.25 there, part of the change belonged to
    the N positions and was in no observed value, while delta said all was well."""
    model, _ = make_run(tiny)
    gap = windows(tiny, 1)[0]
    gap.codes[150:250] = 4  # a gap in the assembly, inside the target span
    ig = attribute_windows(model, "tiny", [gap], [1], ["minus"], steps=256,
                           method="integrated-gradients", baseline="uniform", device="cpu")  # fmt: skip
    x = torch.from_numpy(np.eye(5, 4, dtype=np.float32)[gap.codes][None])
    with torch.no_grad():
        target = Target(model.eval(), "tiny", [1])
        change = (target(x) - target(0.25 * x.sum(2, keepdim=True).expand_as(x))).numpy()
    np.testing.assert_allclose(ig.observed.sum(-1) - change, ig.delta, atol=1e-4)
    assert np.abs(ig.delta).max() < 0.02 * np.abs(change).max()


def test_deepliftshap_is_refused_for_attention_models():
    import yaml

    from gitool.models.registry import create_model

    small = dict(seq_length=400, target_length=25, bin_size=8, heads={"t": 2})
    example = yaml.safe_load((Path(__file__).parents[2] / "workflows" / "example-swin.yaml")
                             .read_text())["model_config"]  # fmt: skip
    refused = {
        "swin": create_model("swin-basenji-small", **example),
        "cnn-attpool": create_model(
            "cnn-attpool", stem_channels=8, channels=16, divisible_by=4, **small
        ),  # fmt: skip
    }
    for model in refused.values():
        with pytest.raises(InputError, match="no rule for the softmax attention"):
            check_method("deepliftshap", model)
        check_method("integrated-gradients", model)
    check_method("deepliftshap", create_model("cnn-maxpool", stem_channels=8, channels=16,
                                              divisible_by=4, **small))  # fmt: skip


def test_parse_bins():
    assert parse_bins("3-5,1", 25) == [3, 4, 5, 1]
    assert parse_bins(None, 25) is None
    with pytest.raises(InputError, match="25 target bins"):
        parse_bins("20-25", 25)
    with pytest.raises(InputError, match="runs backwards"):
        parse_bins("3-1", 25)


def test_command_files_and_ism_equal_to_variants(tiny, capsys, monkeypatch):
    _, run = make_run(tiny)
    bed = write_bed(tiny["dir"] / "regions.bed", [("chr1", 1000, 1400), ("chr3", 200, 600)])
    out = tiny["dir"] / "attr.npz"
    base = ["attribute", "-m", str(run), "--regions", str(bed), "-g", str(tiny["genome"])]
    code, _, err = run_cli([*base, "-o", str(out), "--method", "saliency", "--tracks",
                            "plus,dense", "--bigwig", str(tiny["dir"] / "c.bw"), "--logos", "2"],
                           capsys)  # fmt: skip
    assert code == 0, err
    saved = np.load(out)
    assert saved["hypothetical"].shape[1:] == (2, 400, 4)
    # names as a genome browser reads them (1-based, inclusive): the target span of chr1's
    # 1000-1400 window pair starts at 1,001
    assert saved["name"].tolist()[0] == "chr1:1,001-1,200"
    assert saved["tracks"].tolist() == ["plus", "dense"] and str(saved["method"]) == "saliency"
    assert (tiny["dir"] / "attr.logos.png").read_bytes().startswith(b"\x89PNG")
    onehot = np.eye(5, 4, dtype=np.float32)[saved["sequence"]]
    observed = (saved["hypothetical"] * onehot[:, None]).sum(-1)  # (N, K, L)
    with pyBigWig.open(str(tiny["dir"] / "c.dense.bw")) as bw:
        first = int(saved["start"][0]) + int(saved["target_start"][0])
        got = np.array(bw.values("chr1", first, first + 200), dtype=np.float32)
    np.testing.assert_allclose(got, observed[0, 1, saved["target_start"][0]:][:200], rtol=1e-5,
                               atol=1e-8)  # fmt: skip

    # ISM through attribute equals `gitool variants --ism` at every base
    small = write_bed(tiny["dir"] / "small.bed", [("chr2", 990, 1010)])
    ism_out = tiny["dir"] / "ism-attr.npz"
    code, _, err = run_cli(["attribute", "-m", str(run), "--regions", str(small), "-g",
                            str(tiny["genome"]), "-o", str(ism_out), "--method", "ism"],
                           capsys)  # fmt: skip
    assert code == 0, err
    variants_out = tiny["dir"] / "ism-variants.npz"
    code, _, err = run_cli(["variants", "--ism", "chr2:991-1010", "-m", str(run), "-g",
                            str(tiny["genome"]), "-o", str(variants_out)], capsys)  # fmt: skip
    assert code == 0, err
    by_attribute = np.load(ism_out)["hypothetical"][0]
    # each BED line its own map, in the file's order: adjacent lines are not merged
    two = write_bed(tiny["dir"] / "two.bed", [("chr2", 1010, 1030), ("chr2", 990, 1010)])
    code, _, err = run_cli(["attribute", "-m", str(run), "--regions", str(two), "-g",
                            str(tiny["genome"]), "-o", str(tiny["dir"] / "two.npz"), "--method",
                            "ism"], capsys)  # fmt: skip
    assert code == 0, err
    two_maps = np.load(tiny["dir"] / "two.npz")
    assert two_maps["name"].tolist() == ["chr2:1,011-1,030", "chr2:991-1,010"]
    np.testing.assert_allclose(two_maps["hypothetical"][1], by_attribute, equal_nan=True)
    by_variants = np.load(variants_out)["sum"]
    np.testing.assert_allclose(by_attribute, by_variants, rtol=1e-5, atol=1e-7, equal_nan=True)
    assert np.isnan(by_attribute).any() and np.isfinite(by_attribute).sum() > 40

    # ISM maps of lines out of genome order go to the bigWig in genome order; overlapping
    # ones are refused before any ISM runs (a bigWig holds one value per base)
    code, _, err = run_cli(["attribute", "-m", str(run), "--regions", str(two), "-g",
                            str(tiny["genome"]), "-o", str(tiny["dir"] / "two-bw.npz"),
                            "--method", "ism", "--tracks", "plus", "--bigwig",
                            str(tiny["dir"] / "ism.bw")], capsys)  # fmt: skip
    assert code == 0, err
    with pyBigWig.open(str(tiny["dir"] / "ism.bw")) as bw:
        assert bw.intervals("chr2")[0][:2] == (990, 991) and bw.intervals("chr2")[-1][1] == 1030
    overlapping = write_bed(tiny["dir"] / "over.bed", [("chr2", 990, 1010), ("chr2", 1000, 1020)])
    calls = []
    monkeypatch.setattr(
        "gitool.variants.scoring.iter_variant_scores", lambda *a, **k: calls.append(1)
    )
    code, _, err = run_cli(["attribute", "-m", str(run), "--regions", str(overlapping), "-g",
                            str(tiny["genome"]), "-o", str(tiny["dir"] / "over.npz"), "--method",
                            "ism", "--bigwig", str(tiny["dir"] / "over.bw")], capsys)  # fmt: skip
    assert_input_error(code, err, "--bigwig", "chr2:990-1010 and chr2:1000-1020", "overlap")
    assert calls == [] and not (tiny["dir"] / "over.npz").exists()
    monkeypatch.undo()

    # refusals: one line each, nothing written
    fresh = tiny["dir"] / "fresh.npz"
    for extra, needles in (
        (["--method", "ism", "--bins", "3"], ("--bins", "does not apply to ism")),
        (["--method", "ism", "--index", "0"], ("--index", "ism maps every line")),
        (["--bins", "30"], ("--bins", "25 target bins")),
        (["--method", "magic"], ("--method", "choose from")),
    ):
        code, _, err = run_cli([*base, "-o", str(fresh), *extra], capsys)
        assert_input_error(code, err, *needles)
    code, _, err = run_cli(["attribute", "-m", str(run), "--data", "x", "--regions", str(bed),
                            "-g", str(tiny["genome"]), "-o", str(fresh)], capsys)  # fmt: skip
    assert_input_error(code, err, "exactly one input")
    code, _, err = run_cli([*base, "-o", str(out)], capsys)
    assert_input_error(code, err, "already exists", "--force")
    assert not fresh.exists()

    # a failure while writing the bigWigs leaves none of the outputs
    from gitool.predict import writer

    def broken(self, *args):
        raise OSError("disk full")

    monkeypatch.setattr(writer.TrackSetWriter, "add", broken)
    code, _, err = run_cli([*base, "-o", str(fresh), "--method", "saliency", "--tracks", "plus",
                            "--bigwig", str(tiny["dir"] / "f.bw"), "--logos", "1"], capsys)  # fmt: skip
    assert code != 0 and "disk full" in err
    left = [p.name for p in tiny["dir"].iterdir() if p.name.startswith(("fresh", "f.", ".f"))]
    assert left == []


class Squares(torch.nn.Module):
    """A model with a nonlinearity DeepLIFT has no rule for (a functional square)."""

    def __init__(self):
        super().__init__()
        self.config = type("C", (), {"target_length": 25, "seq_length": 400})()
        self.conv = torch.nn.Conv1d(4, 2, 9, padding=4)

    def forward(self, x, head=None):
        y = self.conv(x.transpose(1, 2)) ** 2  # (B, 2, 400)
        return y[:, :, 100:300].reshape(len(x), 2, 25, 8).mean(-1).transpose(1, 2)


def test_deepliftshap_refuses_a_model_whose_contributions_do_not_add_up(tiny):
    torch.manual_seed(0)
    with pytest.raises(InputError, match="no DeepLIFT rule; use integrated-gradients"):
        attribute_windows(Squares(), "t", windows(tiny, 2), [0], ["a"], method="deepliftshap",
                          shuffles=4, device="cpu")  # fmt: skip


def test_deepliftshap_refuses_a_window_with_n_before_attributing_any(tiny, capsys, monkeypatch):
    from gitool.attribution import attribute as module

    _, run = make_run(tiny)
    bed = write_bed(tiny["dir"] / "r.bed", [("chr1", 1000, 1200), ("chr3", 2900, 3000)])
    calls = []
    batch = module._attribute_batch
    monkeypatch.setattr(module, "_attribute_batch", lambda *a: calls.append(1) or batch(*a))
    out = tiny["dir"] / "d.npz"
    code, _, err = run_cli(["attribute", "-m", str(run), "--regions", str(bed), "-g",
                            str(tiny["genome"]), "-o", str(out), "--method", "deepliftshap",
                            "--batch-size", "1"], capsys)  # fmt: skip
    assert_input_error(code, err, "--method", "chr3:", "holds N")
    assert calls == [] and not out.exists()
