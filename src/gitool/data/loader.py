"""The training data path: whole batches gathered from a store's memory maps on the host,
augmented on the device.

:func:`training_batches` is the one entry point. It yields :class:`HostBatch` es — uint8 codes,
float16 targets exactly as stored and each sample's augmentation draws — in the order
``gitool train`` has always used: one rank's share of a ``DistributedSampler`` permutation
(``drop_last``), resumable part-way into an epoch (:class:`ResumableSampler`), the draws a
pure function of ``(seed, epoch, index)`` (:func:`gitool.data.dataset.draw`). The training
step moves a batch to the device and applies the draws there (:func:`device_batch`,
:func:`augment_batch`): the host never makes a float32 copy of the targets, a one-hot copy of
the sequence, or a per-sample tensor.

How a batch is read: a DataLoader whose items are whole batches (``batch_size=None``; the
sampler deals :class:`BatchKey` s, an epoch and the batch's window indices). A worker sorts
the indices, gathers the rows with one fancy index per memory map into a buffer shared with
the main process (a ring of ``prefetch × workers + 2`` buffers, allocated once: fresh shared
memory per batch costs more than the read), and returns the buffer's number, the order and
the draws; the main process copies the batch out of the ring in the sampled order (into
pinned memory when the batches go to a GPU), before the ring buffer can be dealt again.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from gitool.data.dataset import codes_to_one_hot, draws
from gitool.data.genome import N_CODE
from gitool.data.store import Store
from gitool.errors import InputError
from gitool.runs import to_device

PREFETCH = 2
"""Batches each DataLoader worker reads ahead (its ``prefetch_factor``)."""


class HostBatch(NamedTuple):
    """One batch as the host hands it to the device (:func:`device_batch`)."""

    codes: torch.Tensor  # uint8 (B, seq_length), A=0 C=1 G=2 T=3 N=4
    targets: torch.Tensor  # float16 (B, target_length, n_tracks), as stored
    shift: torch.Tensor  # int64 (B,): each sample's shift in bp (see augment_batch)
    rc: torch.Tensor  # bool (B,): each sample's strand (True: reverse complement)


class BatchKey(NamedTuple):
    """What a DataLoader worker is asked for: one batch of one epoch."""

    epoch: int
    indices: np.ndarray  # int64 (B,): window indices, in the sampled order
    slot: int  # the ring buffer to gather into


def default_sigterm(worker_id: int) -> None:
    """DataLoader workers leave quietly on SIGTERM: the CLI's cleanup handler
    (:func:`gitool.console.run_reporting_errors`) is the main process's. They exit with
    status 0: one killed by the signal made PyTorch raise "worker killed by signal" in the
    main process, in the middle of its own cleanup when the whole job got SIGTERM (a time
    limit), and the run ended with a traceback instead of exit code 143. A worker stopped
    alone is still noticed (PyTorch: "exited unexpectedly")."""
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))


class ResumableSampler(DistributedSampler):
    """A ``DistributedSampler`` that can start part-way into an epoch (resume): ``start``
    samples of this rank's share are skipped."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.start = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return super().__len__() - self.start


class EpochBatches:
    """The DataLoader's sampler: one :class:`BatchKey` per batch of this rank's share of an
    epoch — :class:`ResumableSampler` (shuffled, ``drop_last``) from ``start``, cut into
    ``batch_size`` windows, an incomplete last batch dropped — each dealt the next ring buffer.
    """

    def __init__(self, n: int, batch_size: int, *, rank: int, world: int, seed: int, slots: int):
        self.samples = ResumableSampler(
            range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.batch_size, self.slots = batch_size, slots
        self.epoch = 0
        self.dealt = 0  # keys dealt so far: key k gathers into buffer k % slots

    @property
    def per_epoch(self) -> int:
        """Batches in a whole epoch of this rank."""
        return self.samples.num_samples // self.batch_size

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = int(epoch)
        self.samples.set_epoch(self.epoch)
        self.samples.start = int(start)

    def __len__(self) -> int:
        return len(self.samples) // self.batch_size

    def __iter__(self) -> Iterator[BatchKey]:
        order = np.fromiter(iter(self.samples), dtype=np.int64)
        n = len(order) // self.batch_size
        rows = order[: n * self.batch_size].reshape(n, self.batch_size)
        first, self.dealt = self.dealt, self.dealt + n
        return iter([BatchKey(self.epoch, r, (first + k) % self.slots) for k, r in enumerate(rows)])


class WindowBatches(Dataset):
    """Whole batches of one split, read from the memory maps.

    ``batches[key]`` (in a DataLoader worker or the main process) gathers the key's windows,
    in ascending order, into ring buffer ``key.slot`` and draws their augmentation; it returns
    ``(slot, order, shift, rc)``. :meth:`host_batch` (main process) copies the buffer out in
    the sampled order. The memory maps reopen lazily in spawned workers; the ring is shared
    memory when ``shared`` (workers write it, the main process reads it).
    """

    def __init__(
        self,
        store: str | Path | Store,
        split: str,
        batch_size: int,
        *,
        shift: int = 0,
        rc: bool = False,
        seed: int = 0,
        slots: int = 1,
        shared: bool = False,
    ):
        self.store = store if isinstance(store, Store) else Store(store)
        self.split = split
        self.n = self.store.count(split)
        self.shift, self.rc, self.seed = int(shift), bool(rc), int(seed)
        # Opened here so a damaged array is one clear error now, not a worker's traceback.
        self._sequences = self.store.sequences(split)
        self._targets = self.store.targets(split)
        length = self._sequences.shape[1]
        bins, tracks = self._targets.shape[1:]
        self.codes = torch.empty((slots, batch_size, length), dtype=torch.uint8)
        self.targets = torch.empty((slots, batch_size, bins, tracks), dtype=torch.float16)
        if shared:
            self.codes.share_memory_()
            self.targets.share_memory_()

    def __len__(self) -> int:
        return self.n

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_sequences"] = state["_targets"] = None  # reopened in the worker
        return state

    def __getitem__(self, key: BatchKey) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        epoch, indices, slot = key
        if self._sequences is None:
            self._sequences = self.store.sequences(self.split)
            self._targets = self.store.targets(self.split)
        order = np.argsort(indices, kind="stable")
        rows = indices[order]
        if len(rows) and not (rows[0] >= 0 and rows[-1] < self.n):
            raise IndexError(f"window indices {rows[0]}..{rows[-1]} outside 0..{self.n - 1}")
        # One fancy index per memory map, rows ascending (sequential reads), straight into the
        # ring buffer ("clip": the indices are checked, and "raise" would copy twice).
        np.take(self._sequences, rows, axis=0, out=self.codes[slot].numpy(), mode="clip")
        np.take(self._targets, rows, axis=0, out=self.targets[slot].numpy(), mode="clip")
        shift, rc = draws(self.seed, epoch, indices, self.shift, self.rc)
        return slot, order, shift, rc

    def host_batch(self, gathered, pin: bool = False) -> HostBatch:
        """The :class:`HostBatch` of a gathered key (``batches[key]``): its ring buffer copied
        out in the sampled order, into pinned memory with ``pin``."""
        slot, order, shift, rc = gathered
        where = np.empty_like(order)
        where[order] = np.arange(len(order))  # sampled position k sits at where[k] in the ring
        codes = torch.empty(self.codes.shape[1:], dtype=torch.uint8, pin_memory=pin)
        targets = torch.empty(self.targets.shape[1:], dtype=torch.float16, pin_memory=pin)
        np.take(self.codes[slot].numpy(), where, axis=0, out=codes.numpy(), mode="clip")
        np.take(self.targets[slot].numpy(), where, axis=0, out=targets.numpy(), mode="clip")
        draws_ = [torch.from_numpy(a) for a in (shift, rc)]
        if pin:  # a non-blocking copy from pageable memory would wait for the GPU
            draws_ = [t.pin_memory() for t in draws_]
        return HostBatch(codes, targets, *draws_)


def _as_is(item):
    """The DataLoader's collate function: a gathered batch travels as it is."""
    return item


def training_batches(
    store: str | Path | Store,
    split: str,
    batch_size: int,
    *,
    num_workers: int,
    seed: int,
    epoch: int,
    shift: int,
    rc: bool,
    rank: int = 0,
    world: int = 1,
    start: int = 0,
    device: str | torch.device = "cpu",
    resident: bool = False,
) -> Iterator[HostBatch]:
    """The training batches of one process: :class:`HostBatch` es of ``batch_size`` windows
    of ``split``, from sample ``start`` of epoch ``epoch`` on, then every following epoch,
    endlessly (the caller stops; closing the iterator stops the workers).

    Which windows, in which order, and their augmentation are those of
    ``DataLoader(WindowDataset(store, split, shift, rc, seed), batch_size, drop_last=True,
    sampler=ResumableSampler(num_replicas=world, rank=rank, shuffle=True, seed=seed,
    drop_last=True))`` with ``set_epoch(epoch)`` and ``start`` (in samples, of this rank's
    share) — what ``gitool train`` read before — so N processes see one process's windows,
    and a resumed run an uninterrupted one's. The draws are applied on the device
    (:func:`device_batch`).

    Args:
        store: store folder (or an opened :class:`~gitool.data.store.Store`).
        split: ``train``, ``valid`` or ``test``.
        batch_size: windows per batch (per process).
        num_workers: DataLoader worker processes (0: read in this process); persistent
            across epochs.
        seed: seeds the permutation (``seed + epoch``) and the draws.
        epoch: the first epoch.
        shift: maximum shift in bp (0: none).
        rc: reverse-complement half of the samples.
        rank, world: this process and the number of processes.
        start: samples of this rank's share of ``epoch`` already consumed.
        device: where the batches go; a CUDA device gets them in pinned memory.
        resident: hold the whole split on ``device`` (read once) and gather each batch
            there: no workers, no host copies per batch. The same batches as streaming;
            the caller checks that the split fits (:func:`split_bytes`).

    Raises:
        InputError: the split has too few windows for one batch on each process (or the
            batch size or worker count is out of range).
    """
    if batch_size < 1 or num_workers < 0:
        raise InputError(
            f"batch size {batch_size} and {num_workers} workers: give a batch of at least 1 "
            "window and 0 or more workers",
            field="batch_size" if batch_size < 1 else "num_workers",
        )
    store = store if isinstance(store, Store) else Store(store)
    if resident:
        return _resident_batches(
            store, split, batch_size, seed=seed, epoch=epoch, shift=shift, rc=rc, rank=rank,
            world=world, start=start, device=device,
        )  # fmt: skip
    workers = int(num_workers)
    slots = PREFETCH * workers + 2 if workers else 1
    batches = WindowBatches(
        store, split, batch_size, shift=shift, rc=rc, seed=seed, slots=slots, shared=workers > 0
    )
    sampler = _sampler(store, split, batch_size, rank=rank, world=world, seed=seed, slots=slots)
    loader = DataLoader(
        batches,
        batch_size=None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=_as_is,
        generator=torch.Generator().manual_seed(seed),  # keeps the global RNG untouched
        persistent_workers=workers > 0,
        prefetch_factor=PREFETCH if workers else None,
        worker_init_fn=default_sigterm,
    )
    pin = torch.device(device).type == "cuda"
    return _epochs(loader, sampler, batches, epoch, start, pin)


def _epochs(loader, sampler: EpochBatches, batches: WindowBatches, epoch, start, pin: bool):
    # Each host batch is copied out of its ring buffer before the next is asked for: the
    # DataLoader then has at most PREFETCH × workers keys out (documented prefetch_factor),
    # fewer than the ring's buffers, so no buffer is dealt again before it is copied out.
    while True:
        sampler.set_epoch(epoch, start)
        for gathered in loader:
            yield batches.host_batch(gathered, pin)
        epoch, start = epoch + 1, 0


def _sampler(store: Store, split: str, batch_size: int, **options) -> EpochBatches:
    """The batch sampler of a split; an error when a process would get no whole batch."""
    n = store.count(split)
    sampler = EpochBatches(n, batch_size, **options)
    if sampler.per_epoch == 0:
        raise InputError(
            f"{batch_size} × {options['world']} process(es) is more than the {n} {split} "
            f"windows of {store.path}; use a smaller batch",
            field="batch_size",
        )
    return sampler


def split_bytes(store: Store, split: str) -> int:
    """Bytes a split's sequences and targets take (in memory as on disk)."""
    g, n = store.geometry, store.count(split)
    return n * (g.seq_length + g.target_length * len(store.tracks) * 2)


def _resident_batches(
    store: Store, split, batch_size, *, seed, epoch, shift, rc, rank, world, start, device
) -> Iterator[HostBatch]:
    """:func:`training_batches` with the split held on ``device``: the same keys, gathered
    there."""
    sampler = _sampler(store, split, batch_size, rank=rank, world=world, seed=seed, slots=1)
    codes = _onto(store.sequences(split), device)
    targets = _onto(store.targets(split), device)
    return _resident_epochs(sampler, codes, targets, seed, shift, rc, epoch, start)


def _onto(array: np.ndarray, device, chunk_bytes: int = 1 << 28) -> torch.Tensor:
    """A memory-mapped array copied onto ``device`` 256 MB at a time (the host never holds
    more than one chunk beyond the page cache)."""
    dtype = torch.from_numpy(np.zeros(0, array.dtype)).dtype
    out = torch.empty(array.shape, dtype=dtype, device=device)
    rows = max(1, chunk_bytes // max(1, array[:1].nbytes))
    for i in range(0, len(array), rows):
        out[i : i + rows].copy_(torch.from_numpy(np.array(array[i : i + rows])))
    return out


def _resident_epochs(sampler, codes, targets, seed, shift, rc, epoch, start):
    # The small per-batch tensors go through pinned memory: a copy from pageable memory
    # would wait for the GPU to finish the previous step, and the host could not run ahead.
    device = codes.device
    while True:
        sampler.set_epoch(epoch, start)
        for key in sampler:
            index = to_device(key.indices, device)
            shifts, flips = draws(seed, key.epoch, key.indices, shift, rc)
            yield HostBatch(
                codes[index], targets[index], to_device(shifts, device), to_device(flips, device)
            )
        epoch, start = epoch + 1, 0


def window_batches(
    store: Store, split: str, indices, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(codes uint8 (B, seq_length), targets float16 (B, target_length, n_tracks))`` of
    ``indices`` in batches of ``batch_size`` (the last one may be smaller), read in this
    process with one fancy index per memory map and batch; no augmentation (validation)."""
    sequences, targets = store.sequences(split), store.targets(split)
    indices = np.asarray(indices, dtype=np.int64)
    for i in range(0, len(indices), batch_size):
        chunk = indices[i : i + batch_size]
        order = np.argsort(chunk, kind="stable")
        where = np.empty_like(order)
        where[order] = np.arange(len(order))
        rows = chunk[order]
        yield (
            torch.from_numpy(sequences[rows][where]),
            torch.from_numpy(targets[rows][where]),
        )


# --------------------------------------------------------------------------- on the device


def augment_batch(
    codes: torch.Tensor,
    targets: torch.Tensor,
    shift: torch.Tensor,
    rc: torch.Tensor,
    strand_pair: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply each sample's draws, on the tensors' device: sample by sample what
    :func:`gitool.data.dataset.augment` does on the host.

    The shift first: ``out[j] = codes[j + shift]`` where that index exists, else N; then, for
    ``rc`` rows, the reverse complement (A↔T, C↔G, N stays N), the bins reversed and the
    tracks permuted by ``strand_pair``. One gather for the codes and one for the targets.

    Args:
        codes: uint8 ``(B, seq_length)``.
        targets: ``(B, target_length, n_tracks)``, any float type (float16 from the host).
        shift: int ``(B,)``, bp.
        rc: bool ``(B,)``.
        strand_pair: int ``(n_tracks,)``, each track's partner on the other strand.

    Returns:
        ``(codes uint8, targets float32)``, same shapes.
    """
    device = codes.device
    n, length = codes.shape
    flip = rc.to(device=device, dtype=torch.bool)[:, None]
    shift = shift.to(device=device, dtype=torch.long)[:, None]
    j = torch.arange(length, device=device)
    source = torch.where(flip, length - 1 - j, j) + shift  # rc: comp(codes[L - 1 - j + shift])
    picked = codes.gather(1, source.clamp(0, length - 1))
    picked = picked.masked_fill((source < 0) | (source >= length), N_CODE)
    complement = torch.where(picked == N_CODE, picked, 3 - picked)
    codes = torch.where(flip, complement, picked)
    n_bins, n_tracks = targets.shape[1:]
    bins = torch.arange(n_bins, device=device)
    tracks = torch.arange(n_tracks, device=device)
    pair = torch.as_tensor(strand_pair, device=device, dtype=torch.long)
    bin_source = torch.where(flip, n_bins - 1 - bins, bins)  # (B, T)
    track_source = torch.where(flip, pair, tracks)  # (B, K)
    rows = torch.arange(n, device=device)[:, None, None]
    targets = targets[rows, bin_source[:, :, None], track_source[:, None, :]]
    return codes, targets.float()


def device_batch(
    batch: HostBatch, device: str | torch.device, strand_pair: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A host batch ready for the model: moved to ``device`` (non-blocking), augmented there
    (:func:`augment_batch`) and expanded to one-hot — ``(x float32 (B, seq_length, 4),
    y float32 (B, target_length, n_tracks))``."""
    codes, targets, shift, rc = (t.to(device, non_blocking=True) for t in batch)
    codes, targets = augment_batch(codes, targets, shift, rc, strand_pair)
    return codes_to_one_hot(codes), targets
