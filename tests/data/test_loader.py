"""The training data path: whole float16 batches from the memory maps, the same windows, order
and draws as the per-sample WindowDataset path, augmentation on the device."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from gitool.data.dataset import WindowDataset, augment
from gitool.data.genome import encode
from gitool.data.loader import (
    HostBatch,
    WindowBatches,
    augment_batch,
    device_batch,
    split_bytes,
    training_batches,
    window_batches,
)
from gitool.data.store import Store
from gitool.errors import InputError

from helpers import run_cli

SEED = 5


@pytest.fixture
def store(tiny, capsys):
    args = ["build-dataset", tiny["genome"], tiny["tracks"], "-o", tiny["dir"] / "s",
            "--seq-length", "400", "--bin-size", "8", "--target-length", "25", "-j", "1"]  # fmt: skip
    assert run_cli(args, capsys)[0] == 0
    return Store(tiny["dir"] / "s")


def todays_batches(store, batch_size, n, *, epoch, start=0, rank=0, world=1):
    """``n`` batches of the path ``gitool train`` used before: WindowDataset (codes) and a
    DataLoader over a DistributedSampler resumed at ``start``, into the following epochs.
    Each batch: (indices, draws, augmented codes, augmented float32 targets)."""
    dataset = WindowDataset(store, "train", shift=3, rc=True, seed=SEED, one_hot=False)
    out = []
    while len(out) < n:
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=SEED, drop_last=True
        )
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        indices = list(sampler)[start:]
        loader = DataLoader(dataset, batch_size=batch_size, sampler=indices, drop_last=True)
        for k, (codes, targets) in enumerate(loader):
            chunk = indices[k * batch_size : (k + 1) * batch_size]
            out.append((chunk, [dataset.draw(i) for i in chunk], codes, targets))
        epoch, start = epoch + 1, 0
    return out[:n]


def new_batches(store, batch_size, n, **options) -> list[HostBatch]:
    options = {"num_workers": 0, "seed": SEED, "shift": 3, "rc": True, **options}
    iterator = training_batches(store, "train", batch_size, **options)
    try:
        return list(itertools.islice(iterator, n))
    finally:
        iterator.close()


def assert_same_batches(store, today, new) -> None:
    sequences, targets = store.sequences("train"), store.targets("train")
    pair = torch.as_tensor(store.strand_pair())
    assert len(today) == len(new)
    for (indices, draws, codes, y), batch in zip(today, new, strict=True):
        # the windows as stored, in the sampled order; the same draws
        np.testing.assert_array_equal(batch.codes.numpy(), sequences[indices])
        np.testing.assert_array_equal(batch.targets.numpy(), targets[indices])
        assert batch.shift.tolist() == [s for s, _ in draws]
        assert batch.rc.tolist() == [r for _, r in draws]
        # and, augmented on the device, exactly what the dataset made on the host
        aug_codes, aug_targets = augment_batch(*batch, pair)
        torch.testing.assert_close(aug_codes, codes, rtol=0, atol=0)
        torch.testing.assert_close(aug_targets, y, rtol=0, atol=0)


def test_one_process_gets_todays_windows_order_and_draws_into_the_next_epoch(store):
    per_epoch = store.count("train") // 4
    today = todays_batches(store, 4, per_epoch + 3, epoch=2)
    assert_same_batches(store, today, new_batches(store, 4, per_epoch + 3, epoch=2))
    assert any(rc for _, draws, _, _ in today for _, rc in draws)
    assert len({s for _, draws, _, _ in today for s, _ in draws}) > 1


@pytest.mark.parametrize("rank", [0, 1])
def test_each_of_two_ranks_resumed_part_way_gets_todays_batches(store, rank):
    per_epoch = store.count("train") // 2 // 3
    n = per_epoch + 2  # the rest of the epoch and into the next
    today = todays_batches(store, 3, n, epoch=1, start=6, rank=rank, world=2)
    new = new_batches(store, 3, n, epoch=1, start=6, rank=rank, world=2)
    assert_same_batches(store, today, new)


def test_persistent_workers_deliver_the_same_batches_across_epochs(store):
    """Two workers writing a ring of shared buffers: same batches as reading in-process."""
    n = 3 * (store.count("train") // 2 // 4) + 1  # three epochs of rank 1
    options = dict(epoch=0, start=4, rank=1, world=2)
    alone = new_batches(store, 4, n, **options)
    workers = new_batches(store, 4, n, num_workers=2, **options)
    for a, b in zip(alone, workers, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


def test_host_batches_are_stored_dtypes_and_only_batch_sized(store):
    """uint8 codes and float16 targets as stored: batch × (seq_length + target_length ×
    n_tracks × 2) bytes, plus 9 bytes of draws per sample; nothing else grows with a batch."""
    length, bins, tracks = 400, 25, 4
    for batch_size in (2, 5):
        batch = new_batches(store, batch_size, 1, epoch=0)[0]
        assert batch.codes.dtype == torch.uint8 and batch.codes.shape == (batch_size, length)
        assert batch.targets.dtype == torch.float16
        assert batch.targets.shape == (batch_size, bins, tracks)
        assert batch.shift.dtype == torch.int64 and batch.rc.dtype == torch.bool
        nbytes = sum(t.numel() * t.element_size() for t in batch)
        assert nbytes == batch_size * (length + bins * tracks * 2) + batch_size * (8 + 1)
    # the shared ring the workers write: prefetch × workers + 2 batches, allocated once
    ring = WindowBatches(store, "train", 5, slots=6, shared=True)
    ring_bytes = ring.codes.numel() + ring.targets.numel() * 2
    assert ring_bytes == 6 * 5 * (length + bins * tracks * 2)


def test_augment_batch_equals_augment_sample_by_sample():
    rng = np.random.default_rng(3)
    n, length, bins = 64, 37, 6
    pair = np.array([1, 0, 2, 4, 3])  # two stranded pairs and an unstranded track
    codes = rng.integers(0, 5, (n, length)).astype(np.uint8)
    targets = rng.gamma(1.0, 2.0, (n, bins, len(pair))).astype(np.float16)
    shift = rng.integers(-5, 6, n)
    shift[:3] = [0, length + 2, -length]  # none, and beyond the window (all N)
    rc = rng.random(n) < 0.5
    out_codes, out_targets = augment_batch(
        torch.from_numpy(codes), torch.from_numpy(targets), torch.from_numpy(shift),
        torch.from_numpy(rc), torch.from_numpy(pair),
    )  # fmt: skip
    assert out_codes.dtype == torch.uint8 and out_targets.dtype == torch.float32
    for i in range(n):
        want_codes, want_targets = augment(
            codes[i], targets[i].astype(np.float32), int(shift[i]), bool(rc[i]), pair
        )
        np.testing.assert_array_equal(out_codes[i].numpy(), want_codes)
        np.testing.assert_array_equal(out_targets[i].numpy(), want_targets)


def test_augment_batch_reverse_complements_and_swaps_strands():
    codes = torch.from_numpy(np.stack([encode("AACGN"), encode("AACGN")]))
    targets = torch.arange(2 * 2 * 3, dtype=torch.float16).reshape(2, 2, 3)  # +, -, unstranded
    shift = torch.tensor([0, 1])
    out_codes, out_targets = augment_batch(
        codes, targets, shift, torch.tensor([True, False]), torch.tensor([1, 0, 2])
    )
    np.testing.assert_array_equal(out_codes[0].numpy(), encode("NCGTT"))
    np.testing.assert_array_equal(out_codes[1].numpy(), encode("ACGNN"))
    assert out_targets[0].tolist() == [[4, 3, 5], [1, 0, 2]]
    assert out_targets[1].tolist() == targets[1].float().tolist()


def test_device_batch_is_one_hot_input_and_float32_targets(store):
    batch = new_batches(store, 3, 1, epoch=0)[0]
    x, y = device_batch(batch, "cpu", torch.as_tensor(store.strand_pair()))
    assert x.shape == (3, 400, 4) and x.dtype == torch.float32
    assert y.shape == (3, 25, 4) and y.dtype == torch.float32
    codes, targets = augment_batch(*batch, torch.as_tensor(store.strand_pair()))
    assert torch.equal(x.argmax(-1)[x.sum(-1) > 0], codes[codes < 4].long())
    assert torch.equal(y, targets)


def test_window_batches_read_any_order_without_augmentation(store):
    indices = [5, 1, 3, 0, 2]
    batches = list(window_batches(store, "valid", indices, 2))
    assert [len(codes) for codes, _ in batches] == [2, 2, 1]
    codes = torch.cat([c for c, _ in batches])
    targets = torch.cat([t for _, t in batches])
    assert targets.dtype == torch.float16
    np.testing.assert_array_equal(codes.numpy(), store.sequences("valid")[indices])
    np.testing.assert_array_equal(targets.numpy(), store.targets("valid")[indices])


def test_batches_pickle_without_their_memmaps(store):
    """A spawned worker receives the dataset pickled: open maps must not travel."""
    batches = WindowBatches(store, "train", 2, shift=3, rc=True, seed=SEED)
    clone = pickle.loads(pickle.dumps(batches))
    assert clone._sequences is None and clone._targets is None
    key = (0, np.array([4, 1]), 0)
    a = batches.host_batch(batches[key])
    b = clone.host_batch(clone[key])
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    np.testing.assert_array_equal(a.codes.numpy(), store.sequences("train")[[4, 1]])


def test_a_batch_larger_than_a_rank_share_is_an_input_error(store):
    n = store.count("train")
    with pytest.raises(InputError, match="more than the"):
        training_batches(
            store, "train", n // 2 + 1, num_workers=0, seed=0, epoch=0, shift=0, rc=False,
            world=2,
        )  # fmt: skip
    with pytest.raises(InputError, match="at least 1"):
        training_batches(store, "train", 0, num_workers=0, seed=0, epoch=0, shift=0, rc=False)


@pytest.mark.parametrize("rank", [0, 1])
def test_a_split_held_on_the_device_gives_the_same_batches(store, rank):
    """--data-on-device: the split read once and each batch gathered there (the CPU here)."""
    n = 2 * (store.count("train") // 2 // 3) + 1  # into the third epoch
    options = dict(epoch=1, start=3, rank=rank, world=2)
    today = todays_batches(store, 3, n, **options)
    resident = new_batches(store, 3, n, resident=True, **options)
    assert_same_batches(store, today, resident)
    assert (
        split_bytes(store, "train")
        == store.sequences("train").nbytes + store.targets("train").nbytes
    )
