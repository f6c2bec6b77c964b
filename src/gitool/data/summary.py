"""Human-readable summary of a store (``gitool info``): a coverage store from
``gitool build-dataset`` (its arrays checked against the manifest) or a label store from
``gitool synth-motifs``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table

from gitool.data.store import Store, manifest_format
from gitool.data.windows import SPLITS


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def describe_store(path: str | Path) -> Group:
    """A rich renderable with the store's genome, geometry, splits and tracks (a label
    store: its tasks and splits).

    Raises:
        InputError: not a store, a damaged manifest, or an array file that is missing or
        shorter than the manifest says (naming it).
    """
    if manifest_format(Path(path)) == "gitool-labels":
        # lazy: gitool.data.labels imports torch, which a coverage store does not need
        from gitool.data.labels import LabelStore

        return describe_label_store(LabelStore(path))
    store = Store(path)
    store.check_arrays()
    return _describe_coverage_store(store)


def describe_label_store(store) -> Group:
    """Tasks, sequence length and splits (sequences, positives per task) of a label store."""
    for split in SPLITS:
        store.check_arrays(split)
    m = store.manifest
    head = Table.grid(padding=(0, 2))
    head.add_row(
        "label store",
        f"{store.path}  ({_disk_bytes(store.path) / 1e6:,.1f} MB, format {m['version']}, "
        f"gitool {m.get('gitool_version', '?')}; sequence classification, from "
        "`gitool synth-motifs`)",
    )
    head.add_row("sequences", f"{store.seq_length:,} bp, {len(store.tasks)} tasks (0/1 labels)")
    splits = Table(title="splits", title_justify="left")
    for col in ("split", "sequences", *store.tasks):
        splits.add_column(col, justify="left" if col == "split" else "right")
    for s in SPLITS:
        positives = m["splits"][s].get("positives", [])
        shown = [f"{int(v):,}" for v in positives] + [""] * (len(store.tasks) - len(positives))
        splits.add_row(s, f"{store.count(s):,}", *shown)
    return Group(head, "", splits)


def _describe_coverage_store(store: Store) -> Group:
    m = store.manifest
    g = store.geometry
    head = Table.grid(padding=(0, 2))
    head.add_row(
        "store",
        f"{store.path}  ({_disk_bytes(store.path) / 1e6:,.1f} MB, format {m['version']}, gitool {m['gitool_version']})",
    )
    source = m.get("source") or {}
    if m["genome"].get("path"):
        head.add_row(
            "genome",
            f"{m['genome']['path']}  ({m['genome']['size']:,} bp; {len(m['genome']['chromosomes'])} chromosomes kept)",
        )
    if source:
        crop = source["crop"]
        first, last = crop["target_bins"]
        head.add_row(
            "source",
            f"{source['folder']}  (Basenji/Enformer release, {source.get('organism') or 'organism not named'}; "
            f"each {crop['record_length']:,}-bp record cropped from bp {crop['sequence_offset']:,}, "
            f"bins {first}-{last - 1} of {crop['record_bins']})",
        )
    stride = f", stride {m['stride']:,} bp" if m.get("stride") else ""
    head.add_row(
        "windows",
        f"{g.seq_length:,} bp in → {g.target_length} bins × {g.bin_size} bp out "
        f"(context {g.context_left:,}+{g.context_right:,} bp{stride})",
    )
    head.add_row(
        "transform", f"version {m['transform']['version']}: " + " → ".join(m["transform"]["order"])
    )

    splits = Table(title="splits", title_justify="left")
    for col in ("split", "windows", "chromosomes"):
        splits.add_column(col, justify="right" if col == "windows" else "left")
    for s in SPLITS:
        chroms = m["splits"][s]["chromosomes"]
        shown = ", ".join(chroms[:8]) + (f" … ({len(chroms)})" if len(chroms) > 8 else "")
        splits.add_row(s, f"{m['splits'][s]['windows']:,}", shown)

    tracks = Table(title=f"{m['n_tracks']} tracks", title_justify="left")
    for col in (
        "#",
        "identifier",
        "group",
        "sum_stat",
        "scale",
        "clip_soft",
        "clip",
        "pair",
        "train mean",
        "train max",
        "description",
    ):
        tracks.add_column(
            col,
            justify="right"
            if col in ("#", "scale", "clip_soft", "clip", "pair", "train mean", "train max")
            else "left",
        )
    stats = m["splits"]["train"]
    for i, t in enumerate(store.tracks):
        tracks.add_row(
            str(t["index"]), t["identifier"], t["group"], t["sum_stat"], f"{t['scale']:g}",
            "" if t["clip_soft"] is None else f"{t['clip_soft']:g}",
            "" if t["clip"] is None else f"{t['clip']:g}",
            "" if t["strand_pair"] == t["index"] else str(t["strand_pair"]),
            f"{stats['track_mean'][i]:.4g}", f"{stats['track_max'][i]:.4g}", t["description"],
        )  # fmt: skip
    return Group(head, "", splits, "", tracks)
