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
        self.manifest = yaml.safe_load(manifest.read_text())
        if (
            self.manifest.get("format") != "gitool-store"
            or self.manifest.get("version") != STORE_FORMAT
        ):
            raise InputError(
                f"{manifest}: store format {self.manifest.get('version')!r} is not "
                f"{STORE_FORMAT}; rebuild it with this gitool"
            )
        self.tracks: list[dict] = self.manifest["tracks"]

    def sources(self) -> list[Path]:
        """The files the store was built from (genome and its indexes, tracks file,
        bigWigs, blacklist, regions), as recorded: commands protect them as inputs."""
        options = self.manifest.get("options") or {}
        genome = self.manifest.get("genome", {}).get("path")
        paths = [genome, options.get("tracks"), options.get("blacklist"), options.get("regions")]
        if genome:
            paths += [f"{genome}.fai", f"{genome}.gzi"]
        paths += [track.get("file") for track in self.tracks]
        return [Path(p) for p in paths if p]

    @property
    def geometry(self) -> Geometry:
        m = self.manifest
        return Geometry(m["seq_length"], m["bin_size"], m["target_length"])

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
        """pandas DataFrame of the split's windows (chrom, start, end, target_start, target_end)."""
        import pandas as pd  # lazy: pandas (`import gitool.data.store` stays light)

        self._check_split(split)
        return pd.read_csv(
            self.path / split / "windows.bed",
            sep="\t",
            header=None,
            names=["chrom", "start", "end", "target_start", "target_end"],
            dtype={"chrom": str},
        )

    def strand_pair(self) -> np.ndarray:
        """Column permutation swapping stranded pairs (identity for unstranded tracks)."""
        return np.array([t["strand_pair"] for t in self.tracks], dtype=np.int64)

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise InputError(f"--split {split!r} is unknown; choose from {', '.join(SPLITS)}")
