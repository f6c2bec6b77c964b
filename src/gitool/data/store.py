"""Open a memory-mapped training store made by ``gitool build-dataset``.

Layout (see the store page of the docs)::

    data/
      manifest.yaml   tracks.tsv
      train/ valid/ test/
        sequences.npy   uint8   (N, seq_length)          A=0 C=1 G=2 T=3 N=4
        targets.npy     float16 (N, target_length, n_tracks)
        windows.bed     chrom, start, end, target_start, target_end

Building one is :func:`gitool.data.build.build_store`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from gitool.data.npy import load_array
from gitool.data.windows import SPLITS, Geometry
from gitool.errors import InputError

STORE_FORMAT = 1
FORMAT_NAME = "gitool-store"
# Everything a store folder holds (what ``force`` may replace: :func:`gitool.files.stray_entry`).
LAYOUT = {
    "manifest.yaml": None,
    "tracks.tsv": None,
    **{split: {"sequences.npy": None, "targets.npy": None, "windows.bed": None}
       for split in ("train", "valid", "test")},
}  # fmt: skip
# libyaml when PyYAML has it: a 5,313-track manifest loads in 0.6 s instead of 3 s
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_yaml(text: str):
    """YAML text (safe: plain data only) with the fastest loader available."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader


def write_manifest(manifest: dict, path: Path) -> None:
    """Write a manifest (keys in their order) with the fastest dumper available."""
    with open(path, "w") as handle:
        yaml.dump(manifest, handle, Dumper=_DUMPER, sort_keys=False, width=100)


_TRACK_KEYS = ("identifier", "index", "strand_pair", "clip", "clip_soft", "scale", "sum_stat")


def data_changes(before: dict, after: dict) -> list[str]:
    """What differs between the data two store manifests describe: the geometry, the
    tracks (identifiers, order, strand pairs and their transforms) or a label store's
    tasks, the windows of each split and their chromosomes, and the genome's chromosomes
    and index checksum. Nothing else is compared (not the gitool or format version, the
    build options as typed, file paths, or descriptive texts), so a store moved or rebuilt
    the same way, by any gitool version, matches. Returns the names of the differing parts."""

    def data(manifest: dict) -> dict:
        genome = manifest.get("genome") if isinstance(manifest.get("genome"), dict) else {}
        splits = manifest.get("splits") if isinstance(manifest.get("splits"), dict) else {}
        tracks = manifest.get("tracks") if isinstance(manifest.get("tracks"), list) else []
        return {
            "geometry": [manifest.get(k) for k in ("seq_length", "bin_size", "target_length")],
            "tracks": [
                [t.get(k) for k in _TRACK_KEYS] if isinstance(t, dict) else t for t in tracks
            ],
            "tasks": manifest.get("tasks"),
            "windows": {
                name: [v.get("windows"), v.get("chromosomes")] if isinstance(v, dict) else v
                for name, v in splits.items()
            },
            "genome": [genome.get("chromosomes"), genome.get("fai_md5")],
        }

    old, new = data(before), data(after)
    return [key for key in old if old[key] != new[key]]


def read_manifest(path: Path) -> dict:
    """A store's ``manifest.yaml`` as a mapping.

    Raises:
        InputError: the file is not valid YAML or not a mapping (one line naming it).
    """
    try:
        manifest = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path} is damaged (not text); rebuild the store") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path} is damaged (not valid YAML{where}); rebuild the store") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path} is damaged (not a mapping of keys); rebuild the store")
    return manifest


def manifest_format(path: Path) -> str | None:
    """The ``format`` a folder's manifest names (``gitool-store``, ``gitool-labels``); None
    when there is no readable manifest."""
    try:
        return read_manifest(path / "manifest.yaml").get("format")
    except (OSError, InputError):
        return None


def is_coverage_store(path: Path) -> bool:
    """Whether ``path`` holds a coverage store (made by ``gitool build-dataset``)."""
    return manifest_format(path) == FORMAT_NAME


def manifest_sources(manifest: dict) -> list[Path]:
    """The files a store was built from, as its manifest records them (genome and its
    indexes, tracks file, bigWigs, blacklist, regions, windows BED): commands protect them
    as inputs. Also read from the copy of the manifest a checkpoint keeps (the store may
    have moved)."""
    options = manifest.get("options") or {}
    genome = (manifest.get("genome") or {}).get("path")
    paths = [genome, options.get("tracks"), options.get("blacklist"), options.get("regions"),
             options.get("windows")]  # fmt: skip
    if genome:
        paths += [f"{genome}.fai", f"{genome}.gzi"]
    paths += [row.get("file") for row in manifest.get("tracks") or [] if isinstance(row, dict)]
    return [Path(p) for p in paths if p]


def store_inputs(path: str | Path) -> list[Path]:
    """A store folder and, for a readable coverage store, the files it was built from:
    everything a command reading it must never write over."""
    path = Path(path)
    paths = [path]
    manifest = path / "manifest.yaml"
    try:
        recorded = load_yaml(manifest.read_text())
    except (OSError, yaml.YAMLError):
        return paths
    if isinstance(recorded, dict) and recorded.get("format") == "gitool-store":
        paths += manifest_sources(recorded)
    return paths


class Store:
    """An opened store: manifest, tracks and per-split memory maps (opened lazily)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / "manifest.yaml"
        if not manifest.is_file():
            raise InputError(
                f"{self.path} is not a gitool store (no manifest.yaml); "
                "build one with `gitool build-dataset`"
            )
        self.manifest = read_manifest(manifest)
        kind = self.manifest.get("format")
        if kind == "gitool-labels":
            raise InputError(
                f"{self.path} is a label store (from `gitool synth-motifs`), not a coverage "
                "store from `gitool build-dataset`; give a coverage store"
            )
        if kind != FORMAT_NAME:
            raise InputError(
                f"{manifest}: not a gitool store manifest (format {kind!r}); build one with "
                "`gitool build-dataset`"
            )
        if self.manifest.get("version") != STORE_FORMAT:
            raise InputError(
                f"{manifest}: store format {self.manifest.get('version')!r} is not "
                f"{STORE_FORMAT}; rebuild it with this gitool"
            )
        try:
            self.tracks: list[dict] = list(self.manifest["tracks"])
            for split in SPLITS:
                int(self.manifest["splits"][split]["windows"])
            self.geometry  # noqa: B018 - its keys must be there
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"{manifest} is damaged (tracks, splits or geometry: {type(err).__name__} "
                f"{err}); rebuild the store"
            ) from None
        self._check_tracks(manifest)

    def _check_tracks(self, manifest: Path) -> None:
        """Each track has a text identifier (unique) and a strand partner within the store
        whose partner is the track itself: a hand-edited manifest otherwise passes here and
        fails inside training or prediction."""

        def damaged(i: int, what: str) -> InputError:
            return InputError(
                f"{manifest} is damaged (track {i + 1} of {len(self.tracks)}: {what}); "
                "rebuild the store"
            )

        n = len(self.tracks)
        seen: dict[str, int] = {}
        for i, track in enumerate(self.tracks):
            if not isinstance(track, dict):
                raise damaged(i, "not a mapping of keys")
            identifier = track.get("identifier")
            if not isinstance(identifier, str) or not identifier.strip():
                raise damaged(i, f"identifier {identifier!r} is not text")
            if identifier in seen:
                raise damaged(i, f"identifier {identifier!r} is also track {seen[identifier] + 1}")
            seen[identifier] = i
            pair = track.get("strand_pair")
            if type(pair) is not int or not 0 <= pair < n:
                raise damaged(i, f"strand_pair {pair!r} is not a track index 0-{n - 1}")
        for i, track in enumerate(self.tracks):
            pair = track["strand_pair"]
            if self.tracks[pair]["strand_pair"] != i:
                raise damaged(
                    i,
                    f"strand_pair {pair}, but track {pair + 1}'s strand_pair is "
                    f"{self.tracks[pair]['strand_pair']}, not {i}",
                )

    def sources(self) -> list[Path]:
        """The files the store was built from (:func:`manifest_sources`)."""
        return manifest_sources(self.manifest)

    @property
    def geometry(self) -> Geometry:
        m = self.manifest
        return Geometry(m["seq_length"], m["bin_size"], m["target_length"])

    def check_arrays(self) -> None:
        """Each split's arrays and windows must hold what the manifest says (an interrupted
        copy leaves them short).

        Raises:
            InputError: naming the first missing, damaged or truncated file.
        """
        g = self.geometry
        n_tracks = len(self.tracks)
        for split in SPLITS:
            n = self.count(split)
            expected = {
                "sequences.npy": (np.uint8, (n, g.seq_length)),
                "targets.npy": (np.float16, (n, g.target_length, n_tracks)),
            }
            for name, (dtype, shape) in expected.items():
                array = load_array(self.path / split / name)
                if array.shape != shape or array.dtype != dtype:
                    raise InputError(
                        f"{self.path / split / name} holds {array.dtype} {array.shape}, but the "
                        f"manifest says {np.dtype(dtype)} {shape}; the store is damaged, "
                        "rebuild it"
                    )
            self.windows(split)

    def count(self, split: str) -> int:
        self._check_split(split)
        return int(self.manifest["splits"][split]["windows"])

    def sequences(self, split: str) -> np.ndarray:
        """uint8 memmap ``(N, seq_length)``."""
        self._check_split(split)
        return load_array(self.path / split / "sequences.npy")

    def targets(self, split: str) -> np.ndarray:
        """float16 memmap ``(N, target_length, n_tracks)``."""
        self._check_split(split)
        return load_array(self.path / split / "targets.npy")

    def windows(self, split: str):
        """pandas DataFrame of the split's windows (chrom, start, end, target_start, target_end).

        Raises:
            InputError: the file is missing, or does not hold one line of text, four whole
                numbers per window the manifest counts (naming it).
        """
        import pandas as pd  # lazy: pandas (`import gitool.data.store` stays light)

        self._check_split(split)
        path = self.path / split / "windows.bed"
        columns = ["chrom", "start", "end", "target_start", "target_end"]
        n = self.count(split)
        try:
            table = pd.read_csv(path, sep="\t", header=None, names=columns, dtype={"chrom": str})
        except FileNotFoundError:
            raise InputError(f"{path} is missing; the store is damaged, rebuild it") from None
        except pd.errors.EmptyDataError:
            table = pd.DataFrame({c: pd.Series(dtype=str if c == "chrom" else "int64")
                                  for c in columns})  # fmt: skip
        except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as err:
            raise InputError(
                f"{path} is damaged ({type(err).__name__}); rebuild the store"
            ) from None
        if len(table) != n:
            raise InputError(
                f"{path} holds {len(table)} windows, but the manifest counts {n}; the store is "
                "damaged, rebuild it"
            )
        if not all(pd.api.types.is_integer_dtype(t) for t in table[columns[1:]].dtypes):
            raise InputError(
                f"{path} is damaged (a coordinate is missing or not a whole number); rebuild "
                "the store"
            )
        return table

    def strand_pair(self) -> np.ndarray:
        """Column permutation swapping stranded pairs (identity for unstranded tracks)."""
        return np.array([t["strand_pair"] for t in self.tracks], dtype=np.int64)

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise InputError(
                f"{split!r} is unknown; choose from {', '.join(SPLITS)}", field="split"
            )
