"""A trained model made ready to predict, and the genome it predicts on.

Shared by ``gitool predict`` and ``gitool variants``: :func:`prepare_model` loads a run (or
takes a module), picks the head and checks its geometry against the manifest of the store
it was trained on; :func:`open_genome` opens the genome given, or the one that store
recorded; :func:`strand_permutation` maps stranded tracks for reverse-complement averaging;
:func:`untransform_tracks` gives what :func:`gitool.data.tracks.untransform` needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gitool.console import info, warn
from gitool.data.genome import Genome
from gitool.data.store import manifest_sources, store_inputs
from gitool.data.tracks import TRANSFORM_VERSION, Track
from gitool.data.windows import Geometry
from gitool.errors import InputError, opt
from gitool.runs import choose_head, load_run, run_label, shown_path, to_device


def parse_shifts(shifts: str | int | Iterable[int], bin_size: int) -> tuple[int, ...]:
    """``"0,1,-1"`` (or a sequence of ints) → unique shifts in bp, in the order given.

    The targets stay put while the input moves, so output bin ``j`` sees the sequence of
    genome bin ``j`` moved by ``s`` bp: from ``|s| ≥ bin_size`` on it sees a neighbouring
    bin, not its own.

    Raises:
        InputError: not comma-separated integers, or a shift of ``bin_size`` bp or more.
    """
    if isinstance(shifts, (int, str)):
        items = [s.strip() for s in str(shifts).split(",") if s.strip()]
    else:
        items = [str(s).strip() for s in shifts]
    if not items or not all(re.fullmatch(r"[+-]?\d+", s) for s in items):
        raise InputError(
            f"{shifts!r}: give comma-separated integer shifts in bp, e.g. 0,1,-1", field="shifts"
        )
    values = [int(s) for s in items]
    for value in values:
        if abs(value) >= bin_size:
            raise InputError(
                f"{value}: each shift must be smaller than the model's {bin_size}-bp bin "
                f"(|shift| ≤ {bin_size - 1}; larger ones predict a neighbouring bin), "
                "e.g. 0,1,-1",
                field="shifts",
            )
    return tuple(dict.fromkeys(values))


@dataclass
class PreparedModel:
    """A model ready to predict: its head, geometry and the head's track rows."""

    model: nn.Module
    head: str
    label: str
    geometry: Geometry
    rows: list[dict]
    manifest: dict | None
    inputs: list[Path] = field(default_factory=list)


def trained_inputs(entries: Iterable[dict]) -> list[Path]:
    """The stores a checkpoint's ``data`` entries name and every file they were built
    from (from each store still there, and from the manifest copies)."""
    paths: list[Path] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        paths += manifest_sources(entry.get("manifest") or {})
        store = entry.get("path")
        if store and (Path(store) / "manifest.yaml").is_file():
            paths += store_inputs(store)
    return paths


def prepare_model(
    model_or_run: str | Path | nn.Module, head: str | None, which: str, manifest: dict | None
) -> PreparedModel:
    if isinstance(model_or_run, nn.Module):
        model, data, label = model_or_run, [], type(model_or_run).__name__
        inputs = []
    else:
        model, state, ckpt = load_run(model_or_run, which, "model")
        data, label = state.get("data") or [], run_label(ckpt)
        inputs = [Path(model_or_run), ckpt, *trained_inputs(data)]
    config = getattr(model, "config", None)
    heads = dict(getattr(config, "heads", None) or {})
    if not heads or not hasattr(config, "target_length") or not hasattr(config, "seq_length"):
        raise InputError(
            f"{label} is a {type(model).__name__}, not a coverage-track model; predict takes "
            "swin, enformer and cnn-* runs"
        )
    chosen = choose_head(heads, head, label)
    if manifest is None:
        manifest = next(
            (e.get("manifest") for e in data if e.get("head") == chosen and e.get("manifest")),
            None,
        )
    seq_length, target_length = int(config.seq_length), int(config.target_length)
    bin_size = getattr(config, "bin_size", None) or (manifest or {}).get("bin_size")
    if bin_size is None:
        raise InputError(f"{label}: neither the model config nor a manifest gives the bin size")
    geometry = Geometry(seq_length, int(bin_size), target_length)
    for key, ours in vars(geometry).items():
        theirs = (manifest or {}).get(key)
        if theirs is not None and int(theirs) != ours:
            raise InputError(
                f"{label}: the model has {key} {ours} but the manifest of its head "
                f"{chosen!r} says {theirs}; the checkpoint is inconsistent"
            )
    geometry.check()
    n_tracks = int(heads[chosen])
    if manifest is not None and manifest.get("tracks"):
        rows = [dict(r) for r in manifest["tracks"]]
        if len(rows) != n_tracks:
            raise InputError(
                f"head {chosen!r} of {label} predicts {n_tracks} tracks but the manifest of "
                f"its dataset lists {len(rows)}; the checkpoint is inconsistent"
            )
    else:
        rows = [{"index": i, "identifier": f"track{i}", "strand_pair": i} for i in range(n_tracks)]
    inputs += manifest_sources(manifest or {})
    return PreparedModel(model, chosen, label, geometry, rows, manifest, inputs)


def strand_permutation(rows: list[dict], label: str) -> np.ndarray:
    """``y[..., perm]`` swaps each stranded pair (``strand_pair`` = partner's column)."""
    perm = np.array([int(r.get("strand_pair", i)) for i, r in enumerate(rows)], dtype=np.int64)
    n = len(rows)
    if ((perm < 0) | (perm >= n)).any() or (perm[perm] != np.arange(n)).any():
        raise InputError(
            f"{label}: the manifest's strand_pair columns do not pair tracks up; cannot use "
            f"{opt('rc')}"
        )
    return perm


class Oriented:
    """The selected tracks of a head's output ``(B, T, all tracks)``, every row in forward
    orientation: float32 ``(B, T, selected)``. Reverse-complement rows are mapped back —
    bins reversed, each stranded track read from its ``strand_pair`` column — on the
    device. Shared by ``gitool predict`` and ``gitool variants``.

    Args:
        columns: the selected tracks' columns.
        perm: :func:`strand_permutation` of the head (None: no reverse rows will come).
        n_tracks: the head's number of tracks.
    """

    def __init__(
        self, columns: list[int], perm: np.ndarray | None, n_tracks: int, device: torch.device
    ):
        self.n_selected, self.device = len(columns), device
        self.every_track = list(columns) == list(range(n_tracks))
        self.forward = torch.tensor(columns, dtype=torch.long, device=device)
        self.reverse = (
            None if perm is None else torch.tensor(perm[columns], dtype=torch.long, device=device)
        )

    def __call__(self, out: torch.Tensor, reverse: list[int]) -> torch.Tensor:
        """``out`` with its rows ``reverse`` (reverse-complement inputs) mapped back."""
        if not reverse:
            if self.every_track and out.dtype == torch.float32:
                return out.clone()  # its own memory: a model may reuse its output (CUDA graphs)
            return (out if self.every_track else out.index_select(2, self.forward)).float()
        chosen = set(reverse)
        forward = [i for i in range(out.shape[0]) if i not in chosen]
        y = out.new_empty((out.shape[0], out.shape[1], self.n_selected), dtype=torch.float32)
        if forward:
            rows = to_device(forward, self.device, torch.long)
            part = out.index_select(0, rows)
            y[rows] = (part if self.every_track else part.index_select(2, self.forward)).float()
        rows = to_device(reverse, self.device, torch.long)
        y[rows] = out.index_select(0, rows).index_select(2, self.reverse).flip(1).float()
        return y


def untransform_tracks(spec: PreparedModel, columns: list[int]) -> list[Track]:
    if spec.manifest is None or not spec.manifest.get("tracks"):
        raise InputError(
            f"needs the manifest of the dataset head {spec.head!r} was trained on, and "
            f"{spec.label} has none",
            field="untransform",
        )
    version = (spec.manifest.get("transform") or {}).get("version", TRANSFORM_VERSION)
    if version == "basenji-release":
        raise InputError(
            f"cannot be applied: head {spec.head!r} of {spec.label} was trained on a store "
            "imported from the Basenji/Enformer release, whose values Basenji had already "
            "transformed without recording how to undo it; predictions stay in the release's "
            "units",
            field="untransform",
        )
    if version != TRANSFORM_VERSION:
        raise InputError(
            f"cannot be applied: the data of {spec.label} used transform version {version}; "
            f"this gitool undoes version {TRANSFORM_VERSION} only",
            field="untransform",
        )
    tracks = []
    for c in columns:
        row = spec.rows[c]
        tracks.append(
            Track(
                index=int(row.get("index", c)),
                identifier=str(row["identifier"]),
                file=str(row.get("file", "")),
                clip=row.get("clip"),
                clip_soft=None if row.get("clip_soft") is None else float(row["clip_soft"]),
                scale=float(row.get("scale", 1.0)),
                sum_stat=str(row.get("sum_stat", "sum")),
                strand_pair=int(row.get("strand_pair", c)),
                description=str(row.get("description", "")),
            )
        )
    return tracks


def check_assembly(spec: PreparedModel, genome: Genome) -> None:
    """Warn when the genome's chromosome sizes differ from those the head was trained on
    (another assembly: allowed, e.g. across species, but often a mistake)."""
    trained = ((spec.manifest or {}).get("genome") or {}).get("chromosomes") or {}
    differ = [c for c, n in trained.items() if c in genome.sizes and genome.sizes[c] != n]
    if differ:
        c = differ[0]
        warn(
            f"genome {genome.path}: {c} is {genome.sizes[c]:,} bp but {trained[c]:,} bp in the "
            f"genome head {spec.head!r} was trained on ({len(differ)} chromosome(s) differ); "
            "is it the same assembly?"
        )


def _genome_changes(recorded: dict, sizes: dict[str, int]) -> str | None:
    """How a genome's chromosome sizes differ from those a store manifest recorded (its
    ``genome`` entry: total ``size`` and the kept ``chromosomes``), or None."""
    for chrom, size in (recorded.get("chromosomes") or {}).items():
        if chrom not in sizes:
            return f"it has no {chrom}"
        if sizes[chrom] != int(size):
            return f"{chrom} is {sizes[chrom]:,} bp, was {int(size):,} bp"
    total = sum(sizes.values())
    if recorded.get("size") is not None and total != int(recorded["size"]):
        return f"{total:,} bp in all, was {int(recorded['size']):,} bp"
    return None


def recorded_genome(spec: PreparedModel) -> Genome:
    """The genome head ``spec.head`` was trained on (``-g`` left out): the path its store's
    manifest recorded (the checkpoint keeps a copy), checked to exist with the chromosome
    sizes recorded then.

    Raises:
        InputError: no genome recorded, or it has moved or changed; each tells to pass -g.
    """
    recorded = (spec.manifest or {}).get("genome") or {}
    path = recorded.get("path")
    if not path:
        raise InputError(
            f"not given, and {spec.label} records no genome for head {spec.head!r}; give "
            f"the genome it was trained on with {opt('genome')} GENOME",
            field="genome",
        )
    if not Path(path).is_file():
        raise InputError(
            f"not given, and {path} (the genome {spec.label} was trained on) is no longer "
            f"there; give it with {opt('genome')} GENOME",
            field="genome",
        )
    genome = Genome(path, label="genome")
    changed = _genome_changes(recorded, genome.sizes)
    if changed is not None:
        genome.close()
        raise InputError(
            f"not given, and {path} (the genome {spec.label} was trained on) has changed "
            f"since its store was built ({changed}); give the genome with "
            f"{opt('genome')} GENOME",
            field="genome",
        )
    # a status line, printed as is: it names the CLI's flag
    info(
        f"using genome {shown_path(path)} (recorded by the run's store; give --genome GENOME "
        "to choose)"
    )
    return genome


GPU_BATCH, CPU_BATCH = 32, 8


def default_batch_size(device: torch.device) -> int:
    """Windows per forward pass when none is given: 32 on CUDA, 8 elsewhere."""
    return GPU_BATCH if device.type == "cuda" else CPU_BATCH


def open_genome(spec: PreparedModel, genome: str | Path | Genome | None) -> Genome:
    """The genome given (checked against the head's assembly), else the recorded one."""
    if genome is None:
        return recorded_genome(spec)
    if not isinstance(genome, Genome):
        genome = Genome(genome, label="genome")
    check_assembly(spec, genome)
    return genome


def genome_files(path: str | Path) -> list[Path]:
    """A FASTA and the index files beside it (``.fai``; ``.gzi`` of a bgzip FASTA)."""
    return [Path(path), Path(f"{path}.fai"), Path(f"{path}.gzi")]
