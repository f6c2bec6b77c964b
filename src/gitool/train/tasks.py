"""What differs between training on coverage stores and on label stores.

``coverage`` (``gitool build-dataset`` stores): swin, enformer and cnn-* models, Poisson
NLL, shift/reverse-complement augmentation, validation by mean per-track Pearson. Batches come
from :func:`gitool.data.loader.training_batches` (whole float16 batches, augmented on the
device).
``classification`` (``gitool synth-motifs`` label stores): can models, binary cross-entropy
on logits, no augmentation, validation by mean per-task AUPR (the GLIFAC paper's model
choice), with AUROC alongside. Batches come from a DataLoader over
:class:`~gitool.data.labels.LabelDataset` (the sequences are short and there are few tasks).

Each task gives ``training_batches`` (an endless iterator from a position: epoch and sample),
``device_batch`` (a host batch → model input and targets on the device), ``valid_batches``
(``(codes, targets)`` on the host) and ``strand_pairs`` (what ``device_batch`` needs per head).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from gitool.config import TrainConfig
from gitool.console import info
from gitool.data.dataset import codes_to_one_hot
from gitool.data.labels import LabelDataset, LabelStore, open_any_store
from gitool.data.loader import (
    ResumableSampler,
    default_sigterm,
    device_batch,
    split_bytes,
    training_batches,
    window_batches,
)
from gitool.data.store import Store
from gitool.errors import InputError, RunFailure, opt
from gitool.metrics import TrackMetrics, auroc_columns, average_precision_columns
from gitool.train.losses import balanced_track_weights, poisson_nll

WEIGHT_WINDOWS = 1024
"""Training windows (evenly spaced) that ``--track-weights balanced`` reads."""

CLASSIFIERS = ("can",)


class CoverageTask:
    kind = "coverage"
    score = "valid_pearson"

    def check_model(self, model_name: str, preset: str) -> None:
        if model_name in CLASSIFIERS:
            raise InputError(
                f"{preset}: CAN models classify sequences, not coverage; train them on a label "
                "store from `gitool synth-motifs`, or pick a swin, enformer or cnn-* model for "
                "this build-dataset store",
                field="model",
            )

    def derived(self, stores: list[Store], heads: list[str]) -> dict:
        m = stores[0].manifest
        return {
            "seq_length": m["seq_length"],
            "target_length": m["target_length"],
            "bin_size": m["bin_size"],
            "heads": {h: s.manifest["n_tracks"] for h, s in zip(heads, stores, strict=True)},
        }

    def initialise(self, model, stores: list[Store], heads: list[str]) -> None:
        """Start every head at its store's training-set track means (output biases, zero
        weights: :meth:`~gitool.models.layers.Heads.start_at_means`), so the first steps learn
        structure instead of the tracks' offsets and of the heads' random noise."""
        for store, head in zip(stores, heads, strict=True):
            model.heads.start_at_means(head, store.manifest["splits"]["train"]["track_mean"])

    def training_batches(self, store: Store, cfg: TrainConfig, ctx, epoch: int, start: int):
        """Host batches (:class:`~gitool.data.loader.HostBatch`) of this process from sample
        ``start`` of ``epoch`` on, endlessly."""
        return training_batches(
            store, "train", cfg.batch_size, num_workers=cfg.num_workers, seed=cfg.seed,
            epoch=epoch, shift=cfg.shift, rc=cfg.rc, rank=ctx.rank, world=ctx.world,
            start=start, device=ctx.device, resident=cfg.data_on_device,
        )  # fmt: skip

    def check_resident(self, stores: list[Store], cfg: TrainConfig, device) -> None:
        """With ``data_on_device``: the training splits must fit in half the GPU's free
        memory (the rest is the model's); prints what is held.

        Raises:
            InputError: they do not fit.
        """
        if not cfg.data_on_device:
            return
        need = sum(split_bytes(s, "train") for s in stores)
        where = "the GPU" if device.type == "cuda" else "memory"
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if need > free / 2:
                raise InputError(
                    f"the training split(s) take {need / 1e9:.1f} GB, more than half of the "
                    f"GPU's {free / 1e9:.1f} GB free; leave it off (batches then stream "
                    "from the store)",
                    field="data_on_device",
                )
        info(f"holding the training split(s) in {where}: {need / 1e9:.2f} GB")

    def strand_pairs(self, stores: list[Store], heads: list[str], device) -> dict:
        """Each head's track permutation for reverse-complemented samples, on ``device``."""
        return {
            head: torch.as_tensor(store.strand_pair(), device=device)
            for store, head in zip(stores, heads, strict=True)
        }

    def device_batch(self, batch, device, strand_pair: torch.Tensor):
        """Model input and float32 targets on ``device``, augmented there."""
        return device_batch(batch, device, strand_pair)

    def valid_batches(self, store: Store, indices: list[int], batch_size: int):
        """``(codes, targets)`` of the valid windows ``indices``, targets float16 as stored."""
        return window_batches(store, "valid", indices, batch_size)

    def forward(self, net, x: torch.Tensor, head: str):
        return net(x, head)

    def loss(
        self, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return poisson_nll(out, y, weights)

    def track_weights(self, cfg: TrainConfig, stores: list[Store], heads: list[str]) -> dict:
        """Per-head track weights of the training loss: none for ``equal``; for ``balanced``,
        :func:`~gitool.train.losses.balanced_track_weights` over at most
        :data:`WEIGHT_WINDOWS` evenly spaced training windows of each store (printed)."""
        if cfg.track_weights != "balanced":
            return {}
        out = {}
        for store, head in zip(stores, heads, strict=True):
            targets = store.targets("train")
            step = max(1, -(-len(targets) // WEIGHT_WINDOWS))
            weights = balanced_track_weights(targets[::step])
            out[head] = torch.tensor(weights, dtype=torch.float32)
            shown = ", ".join(f"{w:.3g}" for w in weights[:8]) + (
                " ..." if len(weights) > 8 else ""
            )
            info(f"{head}: track weights {shown} (1 / sqrt(null deviance), mean 1)")
        return out

    def metrics(self, store: Store, device) -> TrackMetrics:
        return TrackMetrics(store.manifest["n_tracks"], device)

    def valid_scores(self, metrics: TrackMetrics) -> dict[str, float]:
        pearson = metrics.compute()["pearson"]
        finite = pearson[np.isfinite(pearson)]  # NaN: a track constant in the split
        return {"valid_pearson": float(finite.mean()) if finite.size else float("nan")}


class LabelMetrics:
    """Collects probabilities and labels of a split (all ranks) for per-task AUPR/AUROC."""

    def __init__(self, device):
        self.device = device
        self.probs: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.probs.append(torch.sigmoid(logits.detach().float()).cpu())
        self.labels.append(labels.detach().cpu())

    def all_reduce(self) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            parts = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, (self.probs, self.labels))
            self.probs = [p for probs, _ in parts for p in probs]
            self.labels = [y for _, labels in parts for y in labels]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return torch.cat(self.probs).numpy(), torch.cat(self.labels).numpy()

    def compute(self) -> dict[str, np.ndarray]:
        """Per-task ``aupr`` and ``auroc``."""
        probs, labels = self.arrays()
        if not np.isfinite(probs).all():
            raise RunFailure(
                "the model's validation outputs are not finite (training diverged); lower "
                "the learning rate or use a -norm / relu CAN variant, then train again"
            )
        return {
            "aupr": average_precision_columns(probs, labels),
            "auroc": auroc_columns(probs, labels),
        }


class ClassificationTask:
    kind = "classification"
    score = "valid_aupr"

    def check_model(self, model_name: str, preset: str) -> None:
        if model_name not in CLASSIFIERS:
            raise InputError(
                f"{preset}: a label store (from `gitool synth-motifs`) trains the sequence "
                "classifiers (can-*, see `gitool models`), not coverage models",
                field="model",
            )

    def derived(self, stores: list[LabelStore], heads: list[str]) -> dict:
        if len(stores) > 1:
            raise InputError("train a CAN model on one label store at a time", field="data")
        return {"seq_length": stores[0].seq_length, "n_tasks": len(stores[0].tasks)}

    def initialise(self, model, stores: list[LabelStore], heads: list[str]) -> None:
        """Nothing: the GLIFAC paper's initialisation (the model's own)."""

    def check_resident(self, stores: list, cfg: TrainConfig, device) -> None:
        """Label stores always stream (they are small): ``data_on_device`` is refused."""
        if cfg.data_on_device:
            raise InputError(
                "holds coverage stores on the GPU; label stores (gitool synth-motifs) "
                "stream their small batches: leave it off",
                field="data_on_device",
            )

    def training_batches(self, store: LabelStore, cfg: TrainConfig, ctx, epoch: int, start: int):
        """``(codes, labels)`` batches of this process from sample ``start`` of ``epoch`` on,
        endlessly: a DataLoader over :class:`~gitool.data.labels.LabelDataset` with the
        coverage path's sampler (:class:`~gitool.data.loader.ResumableSampler`)."""
        dataset = LabelDataset(store, "train")
        sampler = ResumableSampler(
            dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=cfg.seed,
            drop_last=True,
        )  # fmt: skip
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=cfg.num_workers,
            pin_memory=ctx.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched
            persistent_workers=False,
            worker_init_fn=default_sigterm,
        )
        while True:
            sampler.set_epoch(epoch)
            sampler.start = start
            yield from loader
            epoch, start = epoch + 1, 0

    def strand_pairs(self, stores: list[LabelStore], heads: list[str], device) -> dict:
        """None: label stores are not augmented."""
        return {}

    def device_batch(self, batch, device, strand_pair=None):
        codes, labels = batch
        return (
            codes_to_one_hot(codes.to(device, non_blocking=True)),
            labels.to(device, non_blocking=True),
        )

    def valid_batches(self, store: LabelStore, indices: list[int], batch_size: int):
        """``(codes, labels)`` of the valid sequences ``indices``."""
        subset = Subset(LabelDataset(store, "valid"), indices)
        return DataLoader(subset, batch_size=batch_size, num_workers=0)

    def forward(self, net, x: torch.Tensor, head: str):
        return net(x, logits=True)

    def loss(
        self, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out.float(), y.float())

    def track_weights(self, cfg: TrainConfig, stores: list, heads: list[str]) -> dict:
        """None: every task weighs the same (the GLIFAC paper)."""
        return {}

    def metrics(self, store: LabelStore, device) -> LabelMetrics:
        return LabelMetrics(device)

    def valid_scores(self, metrics: LabelMetrics) -> dict[str, float]:
        scores = metrics.compute()
        return {
            "valid_aupr": float(np.nanmean(scores["aupr"])),
            "valid_auroc": float(np.nanmean(scores["auroc"])),
        }


def open_stores(cfg: TrainConfig) -> tuple[list, list[str], CoverageTask | ClassificationTask]:
    """The training stores, their head names and the task they imply; checks they agree."""
    if not cfg.data:
        raise InputError(
            "give the store folder made by `gitool build-dataset` or `gitool synth-motifs`",
            field="data",
        )
    stores = [open_any_store(path, "data") for path in cfg.data]
    kinds = {type(s) for s in stores}
    if len(kinds) > 1:
        raise InputError(
            "coverage stores and label stores cannot be trained together", field="data"
        )
    task = ClassificationTask() if isinstance(stores[0], LabelStore) else CoverageTask()
    # a head is a module name: no "." (a store folder such as hg38.v2 becomes hg38_v2), and
    # a list item of --heads or a config file: no ","
    heads = cfg.heads or [re.sub("[.,]", "_", Path(p).resolve().name) for p in cfg.data]
    bad = next((h for h in heads if not h or h != h.strip() or any(c in h for c in ".,/")), None)
    if bad is not None:
        raise InputError(
            f"{bad!r} cannot name a head: give names without '.', ',', '/' or spaces around "
            "them, e.g. human,mouse",
            field="heads",
        )
    if len(heads) != len(stores):
        raise InputError(
            f"{len(heads)} name(s) for {len(stores)} dataset(s); give one per {opt('data')}",
            field="heads",
        )
    if len(set(heads)) != len(heads):
        raise InputError(f"names must differ, got {heads}; e.g. human,mouse", field="heads")
    if task.kind == "coverage":
        first = stores[0].manifest
        for store in stores[1:]:
            for key in ("seq_length", "bin_size", "target_length"):
                if store.manifest[key] != first[key]:
                    raise InputError(
                        f"{store.path}: {key} {store.manifest[key]} differs from "
                        f"{stores[0].path}'s {first[key]}; datasets trained together need one "
                        "geometry",
                        field="data",
                    )
    return stores, heads, task
