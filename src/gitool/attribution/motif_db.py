"""The motif database that ``gitool modisco`` matches its patterns against.

``builtin`` is JASPAR 2024 CORE fungi: all 178 matrices of the fungi taxonomic group in the
CORE collection, the latest version of each (among them the yeast REB1 MA0363.3, ABF1
MA0265.3 and RAP1 MA0359.3 of the example data). It ships as
``data/jaspar2024_fungi.json``, written offline from the ``pyjaspar==4.0.0`` wheel by
``example_data/make_jaspar_fungi.py``. JASPAR data: CC BY 4.0; cite Rauluseviciute et al.,
JASPAR 2024, Nucleic Acids Res. 52(D1):D174-D182 (2024).

Any other database is a MEME or JASPAR motif file, read by
:func:`gitool.interpret.motifs.read_motif_file` (e.g. a whole JASPAR collection downloaded
from https://jaspar.elixir.no/downloads/ for vertebrates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from gitool.errors import InputError
from gitool.interpret.motifs import Motif, ppm, read_motif_file

BUILTIN = "builtin"
BUILTIN_DESCRIPTION = "JASPAR 2024 CORE fungi (built-in, CC BY 4.0)"
_DATA_FILE = "jaspar2024_fungi.json"

__all__ = ["BUILTIN", "MotifDatabase", "load_builtin_database", "load_motif_database"]


@dataclass(frozen=True)
class MotifDatabase:
    """Target motifs for Tomtom: ``motifs`` in file order, ``description`` for reports,
    ``path`` the file they came from (None for the built-in collection)."""

    motifs: tuple[Motif, ...]
    description: str
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.motifs)

    def probability_matrices(self) -> list[np.ndarray]:
        """Each motif's position probability matrix as ``(4, L)`` (rows A C G T), the layout
        :func:`memelite.tomtom.tomtom` takes."""
        return [np.ascontiguousarray(ppm(m).T) for m in self.motifs]


@lru_cache(maxsize=1)
def load_builtin_database() -> MotifDatabase:
    """The built-in JASPAR 2024 CORE fungi collection."""
    text = resources.files("gitool.attribution").joinpath("data", _DATA_FILE).read_text("utf-8")
    motifs = tuple(
        Motif(
            name=entry["name"],
            matrix_id=entry["matrix_id"],
            counts=np.asarray(entry["counts"], dtype=np.float64).T,  # stored (4, L)
            collection=entry["collection"],
            source="JASPAR 2024 (CC BY 4.0)",
        )
        for entry in json.loads(text)["motifs"]
    )
    return MotifDatabase(motifs=motifs, description=BUILTIN_DESCRIPTION)


def load_motif_database(text: str | Path | None, field: str = "motifs") -> MotifDatabase:
    """``builtin`` (or None) for the built-in collection, else a MEME/JASPAR motif file.
    Errors are :class:`InputError` about option ``field``."""
    if text is None or str(text) == BUILTIN:
        return load_builtin_database()
    path = Path(text)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a MEME/JASPAR motif file", field=field)
    if not path.exists():
        raise InputError(
            f"{path}: no such motif file; give a MEME/JASPAR file or {BUILTIN!r}", field=field
        )
    try:
        motifs = read_motif_file(path)
    except InputError as err:
        raise InputError(err.template, field=field) from None
    return MotifDatabase(motifs=tuple(motifs), description=str(path), path=path)
