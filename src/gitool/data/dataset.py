"""The torch ``Dataset`` over a store split, with shift and reverse-complement augmentation.

Augmentation is a pure function of ``(seed, epoch, index)`` (:func:`draw`): the same sample
gets the same shift/strand in any DataLoader worker, any rank and after a resume. Training
reads whole batches instead (:func:`gitool.data.loader.training_batches`), with the same
draws, and augments them on the device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gitool.data.genome import N_CODE, one_hot, reverse_complement
from gitool.data.store import Store


def shift_codes(codes: np.ndarray, shift: int) -> np.ndarray:
    """Move the window ``shift`` bp downstream (> 0) or upstream (< 0); N fills the gap.

    ``out[j] = codes[j + shift]`` where that index exists, else N.
    """
    if shift == 0:
        return codes
    out = np.full_like(codes, N_CODE)
    if shift > 0:
        out[:-shift] = codes[shift:]
    else:
        out[-shift:] = codes[:shift]
    return out


def draw(seed: int, epoch: int, index: int, max_shift: int, rc: bool) -> tuple[int, bool]:
    """The ``(shift, rc)`` sample ``index`` gets in ``epoch``: a shift in
    ``[-max_shift, max_shift]`` bp and, with ``rc``, the reverse strand with probability 0.5.

    The one definition of the augmentation draws (a pure function of ``(seed, epoch, index)``):
    :class:`WindowDataset` and :func:`gitool.data.loader.training_batches` both use it.
    """
    if not (max_shift or rc):
        return 0, False
    rng = np.random.default_rng((int(seed), int(epoch), int(index)))
    shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift else 0
    return shift, bool(rc and rng.random() < 0.5)


def draws(
    seed: int, epoch: int, indices: np.ndarray, max_shift: int, rc: bool
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`draw` for each of ``indices``: shifts int64 ``(B,)`` and rc flags bool ``(B,)``."""
    shifts = np.zeros(len(indices), dtype=np.int64)
    flags = np.zeros(len(indices), dtype=bool)
    if max_shift or rc:
        for k, index in enumerate(indices):  # one generator per sample: ~12 µs each
            shifts[k], flags[k] = draw(seed, epoch, index, max_shift, rc)
    return shifts, flags


def augment(
    codes: np.ndarray, targets: np.ndarray, shift: int, rc: bool, strand_pair: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a shift, then (optionally) the reverse complement.

    Args:
        codes: uint8 ``(seq_length,)``.
        targets: ``(target_length, n_tracks)``.
        shift: bp, see :func:`shift_codes`.
        rc: reverse-complement the sequence, reverse the bins and swap stranded tracks.
        strand_pair: column permutation (each track → its partner on the other strand).
    """
    codes = shift_codes(codes, shift)
    # With odd context (seq_length - target span) the reverse strand's targets sit 1 bp
    # off the forward ones; well inside a 128-bp bin and the ±3-bp shifts.
    if rc:
        codes = reverse_complement(codes)
        targets = targets[::-1, strand_pair]
    return codes, targets


class WindowDataset(Dataset):
    """Windows of one split: ``(one_hot (seq_length, 4) float32, targets (T, n_tracks) float32)``
    — or ``(codes (seq_length,) uint8, targets)`` with ``one_hot=False``, 16× less to move
    between processes and to the GPU (expand there with :func:`codes_to_one_hot`).

    Args:
        store: store folder (or an opened :class:`Store`).
        split: ``train``, ``valid`` or ``test``.
        shift: maximum random shift in bp (0 = none); training default 3.
        rc: reverse complement with probability 0.5.
        seed: augmentation seed; call :meth:`set_epoch` each epoch for fresh draws.
        one_hot: return one-hot float32 (default) or the uint8 codes.

    The memory maps reopen lazily in each spawned DataLoader worker.
    """

    def __init__(
        self,
        store: str | Path | Store,
        split: str,
        shift: int = 0,
        rc: bool = False,
        seed: int = 0,
        one_hot: bool = True,
    ):
        self.store = store if isinstance(store, Store) else Store(store)
        self.split = split
        self.n = self.store.count(split)
        self.shift, self.rc, self.seed = int(shift), bool(rc), int(seed)
        self.one_hot = one_hot
        self.epoch = 0
        self.strand_pair = self.store.strand_pair()
        # Opened here so a damaged array is one clear error now, not a DataLoader worker's
        # traceback later; dropped when pickled (see __getstate__), reopened in the worker.
        self._sequences = self.store.sequences(split)
        self._targets = self.store.targets(split)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_sequences"] = state["_targets"] = None  # reopened in the worker
        return state

    def draw(self, index: int) -> tuple[int, bool]:
        """The ``(shift, rc)`` this sample gets this epoch (:func:`draw`)."""
        return draw(self.seed, self.epoch, index, self.shift, self.rc)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} windows")
        if self._sequences is None:
            self._sequences = self.store.sequences(self.split)
            self._targets = self.store.targets(self.split)
        codes = np.asarray(self._sequences[index])
        targets = np.asarray(self._targets[index], dtype=np.float32)
        shift, rc = self.draw(index)
        codes, targets = augment(codes, targets, shift, rc, self.strand_pair)
        x = one_hot(codes) if self.one_hot else np.array(codes, dtype=np.uint8)  # own, writable
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(targets))


def codes_to_one_hot(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes ``(..., L)`` → float32 one-hot ``(..., L, 4)`` (N → zeros), on their device."""
    return torch.nn.functional.one_hot(codes.long(), 5)[..., :4].float()
