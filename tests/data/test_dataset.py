"""The training Dataset: one-hot, shift with N padding, reverse complement with strand swap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gitool.data.dataset import WindowDataset, augment, draw, draws, shift_codes
from gitool.data.genome import encode, one_hot, reverse_complement

from helpers import assert_input_error, run_cli


@pytest.fixture
def store(tiny, capsys):
    args = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "s",
            "--seq-length", "400", "--bin-size", "8", "--target-length", "25", "-j", "1"]  # fmt: skip
    assert run_cli(args, capsys)[0] == 0
    return tiny["dir"] / "s"


def test_one_hot_of_n_is_zero_and_acgt_is_identity():
    x = one_hot(encode("ACGTNnacgtRY"))
    np.testing.assert_array_equal(x[:4], np.eye(4))
    np.testing.assert_array_equal(x[6:10], np.eye(4))  # lower case is a base, not N
    assert x[4].sum() == 0 and x[5].sum() == 0 and x[10:].sum() == 0


def test_reverse_complement_twice_is_identity():
    codes = encode("ACCGTNNAGT")
    np.testing.assert_array_equal(reverse_complement(codes), encode("ACTNNACGGT"))
    np.testing.assert_array_equal(reverse_complement(reverse_complement(codes)), codes)


def test_shift_pads_with_n():
    codes = encode("ACGTAC")
    np.testing.assert_array_equal(shift_codes(codes, 2), encode("GTACNN"))
    np.testing.assert_array_equal(shift_codes(codes, -2), encode("NNACGT"))
    np.testing.assert_array_equal(shift_codes(codes, 0), codes)


def test_augment_swaps_stranded_tracks_and_reverses_bins():
    targets = np.arange(12, dtype=np.float32).reshape(4, 3)  # 4 bins, tracks: +, -, unstranded
    pair = np.array([1, 0, 2])
    codes, rc_targets = augment(encode("AACG"), targets, 0, True, pair)
    np.testing.assert_array_equal(codes, encode("CGTT"))
    np.testing.assert_array_equal(rc_targets[:, 0], targets[::-1, 1])
    np.testing.assert_array_equal(rc_targets[:, 1], targets[::-1, 0])
    np.testing.assert_array_equal(rc_targets[:, 2], targets[::-1, 2])
    _, twice = augment(codes, rc_targets, 0, True, pair)
    np.testing.assert_array_equal(twice, targets)


def test_dataset_items_match_store(store):
    plain = WindowDataset(store, "train")
    seqs, targets = plain.store.sequences("train"), plain.store.targets("train")
    x, y = plain[3]
    assert x.shape == (400, 4) and x.dtype == torch.float32
    assert y.shape == (25, 4) and y.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), one_hot(seqs[3]))
    np.testing.assert_array_equal(y.numpy(), targets[3].astype(np.float32))
    with pytest.raises(IndexError):
        plain[len(plain)]


def test_augmentation_is_reproducible_and_uses_strand_pair(store):
    aug = WindowDataset(store, "train", shift=3, rc=True, seed=1)
    plain = WindowDataset(store, "train")
    draws = [aug.draw(i) for i in range(len(aug))]
    assert {s for s, _ in draws} <= set(range(-3, 4)) and len({s for s, _ in draws}) > 1
    assert 0 < sum(rc for _, rc in draws) < len(draws)
    for i, (shift, rc) in enumerate(draws):
        x, y = aug[i]
        x0, y0 = plain[i]
        if rc:
            np.testing.assert_array_equal(y.numpy(), y0.numpy()[::-1][:, [1, 0, 2, 3]])
            x = x.flip(0).flip(1)  # undo RC: reverse positions, complement = reverse A,C,G,T
        else:
            np.testing.assert_array_equal(y.numpy(), y0.numpy())
        if shift > 0:
            np.testing.assert_array_equal(x[: 400 - shift], x0[shift:])
            assert x[400 - shift :].sum() == 0
        elif shift < 0:
            np.testing.assert_array_equal(x[-shift:], x0[:shift])
            assert x[:-shift].sum() == 0
    again = WindowDataset(store, "train", shift=3, rc=True, seed=1)
    assert [again.draw(i) for i in range(len(again))] == draws
    again.set_epoch(1)
    assert [again.draw(i) for i in range(len(again))] != draws


def test_draws_are_one_pure_function_of_seed_epoch_and_index(store):
    """:func:`draw` is the one definition (the dataset and the batch loader use it): a
    generator seeded with (seed, epoch, index), a shift, then a coin for the strand."""
    indices = np.array([0, 5, 17, 2, 9])
    for seed, epoch, shift, rc in [(0, 0, 3, True), (1, 3, 3, True), (2, 1, 5, False)]:
        shifts, flags = draws(seed, epoch, indices, shift, rc)
        assert shifts.dtype == np.int64 and flags.dtype == bool
        for i, s, r in zip(indices, shifts, flags, strict=True):
            rng = np.random.default_rng((seed, epoch, int(i)))
            assert s == rng.integers(-shift, shift + 1)
            assert r == (rc and rng.random() < 0.5)
            assert draw(seed, epoch, i, shift, rc) == (s, r)
    zeros, nope = draws(1, 2, indices, 0, False)
    assert not zeros.any() and not nope.any()
    ds = WindowDataset(store, "train", shift=3, rc=True, seed=4)
    ds.set_epoch(2)
    assert [ds.draw(i) for i in range(6)] == [draw(4, 2, i, 3, True) for i in range(6)]


def test_dataset_pickles_without_its_memmaps(store):
    """A DataLoader worker receives the dataset pickled: open maps must not travel."""
    import pickle

    ds = WindowDataset(store, "valid", shift=3, rc=True)
    first = ds[0]  # opens the maps in this process
    assert ds._sequences is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._sequences is None and clone._targets is None
    np.testing.assert_array_equal(clone[0][1].numpy(), first[1].numpy())


def test_dataloader_with_spawned_workers(store):
    ds = WindowDataset(store, "valid", shift=3, rc=True)
    ds[0]
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=2, multiprocessing_context="spawn"
    )
    batches = list(loader)
    assert sum(len(b[0]) for b in batches) == len(ds)
    expect = torch.stack([ds[i][1] for i in range(len(ds))])
    torch.testing.assert_close(torch.cat([b[1] for b in batches]), expect)


def test_damaged_store_stops_train_with_one_line(store, tmp_path, capsys):
    """Checked when the dataset is made, not in a DataLoader worker (a worker's traceback)."""
    import os

    import yaml

    path = store / "train" / "targets.npy"
    os.truncate(path, path.stat().st_size - 1)
    model_config = {"stem_channels": 8, "channels": 16, "divisible_by": 4}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": [str(store)], "model": "cnn-maxpool",
                                   "model_config": model_config, "num_workers": 2}))  # fmt: skip
    code, _, err = run_cli(
        ["train", "--config", cfg, "-o", tmp_path / "run", "--gpus", "0"], capsys
    )
    assert_input_error(code, err, "train/targets.npy is damaged", "rebuild it")
    assert not (tmp_path / "run").exists()
