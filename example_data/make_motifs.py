#!/usr/bin/env python
"""Rebuild ``src/gitool/interpret/data/motifs_jaspar2024.json`` (the built-in GLIFAC motifs).

Reads the 13 pinned JASPAR 2024 matrices (the benchmark's 12 plus SP1) offline from the ``pyjaspar==4.0.0`` wheel (member
``pyjaspar/data/JASPAR2024.sqlite``; JASPAR data CC BY 4.0) and writes their counts with
their IDs, collection, data type and species. The versions were chosen for how well each
matrix stands out from a 200-bp random background and whether two matrices detect each
other's instances (``gitool synth-motifs`` warns about a motif a scan cannot detect).

Usage::

    python example_data/make_motifs.py [--wheels DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from make_example_data import PYJASPAR_WHEEL, check_wheel, download_wheels, extract_jaspar_db

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "gitool" / "interpret" / "data" / "motifs_jaspar2024.json"

# name -> (matrix ID, why this version)
MOTIFS = {
    "CEBPB": ("MA0466.4", "latest version"),
    "ELF1": (
        "MA0473.2",
        "HT-SELEX; the latest (MA0473.4, 9 bp) shares its GGAAGT core "
        "with SPI1 and is detected in only half of its instances",
    ),
    "ESR1": ("MA0112.4", "latest version"),
    "FOXN3": ("MA1489.1", "only version"),
    "GATA1": (
        "MA0035.3",
        "mouse Gata1 ChIP-seq; the human versions MA0035.4/.5 (10.1 and "
        "9.8 bits) are barely distinguishable from a random 200-bp background",
    ),
    "IRF1": ("MA0050.1", "human SELEX; the latest (MA0050.4) is a weaker mouse matrix"),
    "NFIB": ("MA1643.2", "latest version"),
    "SIX3": ("MA0631.1", "17-bp PBM matrix; the latest (MA0631.2) is its 11-bp trim"),
    "SP1": (
        "MA0079.4",
        "not one of the 12 default motifs: the GLIFAC paper's text names its ninth motif SPI, its "
        "authors' analysis code labels it SP1 (MA0079); HT-SELEX, 15 bp, the version a scan "
        "finds best (MA0079.1/.2 are 9.7 and 11.1 bits)",
    ),
    "SPI1": (
        "MA0080.6",
        "mouse Spi1, 17 bp: fits the CAN's 19-bp filters (human MA0080.5 is "
        "20 bp) and, unlike HT-SELEX MA0080.4, does not share ELF1's CGGAAGT core",
    ),
    "TAL1": (
        "MA0091.2",
        "TAL1::TCF3 E-box heterodimer: CORE has TAL1 only as dimers, and "
        "MA0140 (GATA1::TAL1) contains a GATA site, which would blur the TAL1/GATA1 pair",
    ),
    "TEAD1": ("MA0090.1", "compiled matrix; the later ChIP-seq/HT-SELEX versions are weaker"),
    "YY1": ("MA0095.2", "human ChIP-seq; the latest (MA0095.4) is an 8-bp mouse matrix"),
}


@contextmanager
def jaspar_connection(wheels: Path | None) -> Iterator[sqlite3.Connection]:
    """The JASPAR 2024 database of the pinned pyjaspar wheel (in ``wheels``, else downloaded
    to a temporary folder), read-only."""
    with tempfile.TemporaryDirectory() as tmp:
        wheels = wheels or Path(tmp)
        if not (wheels / PYJASPAR_WHEEL).exists():
            download_wheels(wheels)
        check_wheel(wheels / PYJASPAR_WHEEL)
        db = extract_jaspar_db(wheels / PYJASPAR_WHEEL, Path(tmp))
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            yield con
        finally:
            con.close()


def read_counts(con: sqlite3.Connection, internal: int) -> list[list[float]]:
    """Counts ``[row A/C/G/T][column]`` of the matrix with internal ID ``internal``."""
    cells = con.execute(
        'SELECT "row", col, val FROM MATRIX_DATA WHERE ID = ? ORDER BY "row", col', (internal,)
    ).fetchall()
    width = max(col for _, col, _ in cells)
    counts: list[list[float]] = [[0] * width for _ in range(4)]
    for base, col, value in cells:
        counts["ACGT".index(base.upper())][col - 1] = int(value) if value == int(value) else value
    return counts


def annotations(con: sqlite3.Connection, internal: int) -> tuple[str, list]:
    """The matrix's data type (ChIP-seq, HT-SELEX, ...) and its species' taxon IDs."""
    tag = "SELECT VAL FROM MATRIX_ANNOTATION WHERE ID = ? AND TAG = ?"
    data_type = con.execute(tag, (internal, "type")).fetchone()
    tax_ids = [
        t for (t,) in con.execute("SELECT TAX_ID FROM MATRIX_SPECIES WHERE ID = ?", (internal,))
    ]
    return (data_type[0] if data_type else ""), tax_ids


def read_matrix(con: sqlite3.Connection, name: str, matrix_id: str, why: str) -> dict:
    base_id, version = matrix_id.split(".")
    row = con.execute(
        "SELECT ID, COLLECTION, NAME FROM MATRIX WHERE BASE_ID = ? AND VERSION = ?",
        (base_id, int(version)),
    ).fetchone()
    if row is None or name not in row[2].upper().replace("::", " ").split():
        raise SystemExit(f"JASPAR {matrix_id} is not {name}: {row}")
    internal, collection, jaspar_name = row
    counts = read_counts(con, internal)
    data_type, tax_ids = annotations(con, internal)
    return {
        "name": name,
        "jaspar_name": jaspar_name,
        "matrix_id": matrix_id,
        "base_id": base_id,
        "version": int(version),
        "collection": collection,
        "data_type": data_type,
        "tax_ids": tax_ids,
        "why": why,
        "source": "JASPAR 2024 (CC BY 4.0)",
        "counts": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, help="folder holding the pyjaspar wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with jaspar_connection(args.wheels) as con:
        motifs = [read_matrix(con, n, *MOTIFS[n]) for n in sorted(MOTIFS)]
    document = {
        "description": "Position frequency matrices (counts, rows A C G T) of the 12 motifs "
        "of the GLIFAC synthetic benchmark (GLIFAC paper, appendix A), plus SP1, which the "
        "authors' code has in place of SPI1.",
        "source": "JASPAR 2024 (CC BY 4.0), https://jaspar.elixir.no/ ; read offline from "
        "pyjaspar==4.0.0 (PyPI wheel), member pyjaspar/data/JASPAR2024.sqlite",
        "license": "CC BY 4.0 (JASPAR). Cite: Rauluseviciute et al., JASPAR 2024, Nucleic "
        "Acids Res. 52(D1):D174-D182 (2024).",
        "recipe": "example_data/make_motifs.py: for each pinned matrix ID, SELECT ID FROM MATRIX "
        'WHERE BASE_ID = ? AND VERSION = ?; SELECT "row", col, val FROM MATRIX_DATA '
        "WHERE ID = ? -- counts[row A/C/G/T][col - 1] = val",
        "choice": "For each TF, the JASPAR 2024 version that a log-odds scan tells apart from a "
        "uniform random 200-bp background, without detecting another motif's "
        "instances (checked by `gitool synth-motifs`, which warns about a motif a scan cannot detect); the GLIFAC paper's models reach classification "
        "AUPR 0.95-0.97, which short low-information versions make impossible.",
        "motifs": motifs,
    }
    text = json.dumps(document, indent=1)
    # one line per count row
    text = re.sub(
        r"\[\s*\n\s*([-\d.,\s]+?)\s*\]",
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
        text,
    )
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
