#!/usr/bin/env python
"""Rebuild ``src/gitool/attribution/data/jaspar2024_fungi.json`` (``gitool modisco``'s
built-in motif database).

Reads every JASPAR 2024 CORE matrix of the fungi taxonomic group, the latest version of
each base ID, offline from the ``pyjaspar==4.0.0`` wheel (member
``pyjaspar/data/JASPAR2024.sqlite``; JASPAR data CC BY 4.0) and writes their counts with
their IDs, names, data type and species. The yeast REB1, ABF1 and RAP1 matrices of the
bundled example data (``make_example_data.py``) must be among them, or the script fails.

Usage::

    python example_data/make_jaspar_fungi.py [--wheels DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import tempfile
from pathlib import Path

from make_example_data import (
    MOTIFS,
    PYJASPAR_WHEEL,
    check_wheel,
    download_wheels,
    extract_jaspar_db,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "gitool" / "attribution" / "data" / "jaspar2024_fungi.json"

# every CORE fungi matrix; the latest version of each base ID is kept
QUERY = """
SELECT m.ID, m.BASE_ID, m.VERSION, m.NAME
FROM MATRIX m JOIN MATRIX_ANNOTATION a ON a.ID = m.ID
WHERE m.COLLECTION = 'CORE' AND a.TAG = 'tax_group' AND a.VAL = 'fungi'
ORDER BY m.BASE_ID, m.VERSION
"""


def read_counts(con: sqlite3.Connection, internal: int) -> list[list[float]]:
    cells = con.execute(
        'SELECT "row", col, val FROM MATRIX_DATA WHERE ID = ? ORDER BY "row", col', (internal,)
    ).fetchall()
    width = max(col for _, col, _ in cells)
    counts: list[list[float]] = [[0] * width for _ in range(4)]
    for base, col, value in cells:
        counts["ACGT".index(base.upper())][col - 1] = int(value) if value == int(value) else value
    return counts


def read_collection(con: sqlite3.Connection) -> list[dict]:
    latest: dict[str, tuple[int, str, int, str]] = {}
    for internal, base_id, version, name in con.execute(QUERY):
        if base_id not in latest or int(version) > latest[base_id][2]:
            latest[base_id] = (internal, base_id, int(version), name)
    motifs = []
    tag = "SELECT VAL FROM MATRIX_ANNOTATION WHERE ID = ? AND TAG = ?"
    for internal, base_id, version, name in sorted(latest.values(), key=lambda r: r[1]):
        data_type = con.execute(tag, (internal, "type")).fetchone()
        tax_ids = [
            t for (t,) in con.execute("SELECT TAX_ID FROM MATRIX_SPECIES WHERE ID = ?", (internal,))
        ]
        motifs.append(
            {
                "matrix_id": f"{base_id}.{version}",
                "name": name,
                "base_id": base_id,
                "version": version,
                "collection": "CORE",
                "data_type": data_type[0] if data_type else "",
                "tax_ids": tax_ids,
                "counts": read_counts(con, internal),
            }
        )
    return motifs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, help="folder holding the pyjaspar wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheels or Path(tmp)
        if not (wheels / PYJASPAR_WHEEL).exists():
            download_wheels(wheels)
        check_wheel(wheels / PYJASPAR_WHEEL)
        con = sqlite3.connect(
            f"file:{extract_jaspar_db(wheels / PYJASPAR_WHEEL, Path(tmp))}?mode=ro", uri=True
        )
        try:
            motifs = read_collection(con)
        finally:
            con.close()
    ids = {m["matrix_id"] for m in motifs}
    for motif in MOTIFS:  # the example data's REB1, ABF1, RAP1
        if motif.matrix_id not in ids:
            raise SystemExit(f"{motif.name} ({motif.matrix_id}) is not in the collection")
    document = {
        "description": "JASPAR 2024 CORE fungi: every matrix of the fungi taxonomic group in "
        "the CORE collection, the latest version of each base ID (position frequency "
        "matrices, counts, rows A C G T). The built-in motif database of `gitool modisco`.",
        "source": "JASPAR 2024 (CC BY 4.0), https://jaspar.elixir.no/ ; read offline from "
        "pyjaspar==4.0.0 (PyPI wheel), member pyjaspar/data/JASPAR2024.sqlite",
        "license": "CC BY 4.0 (JASPAR). Cite: Rauluseviciute et al., JASPAR 2024, Nucleic "
        "Acids Res. 52(D1):D174-D182 (2024).",
        "recipe": "example_data/make_jaspar_fungi.py: SELECT m.ID, m.BASE_ID, m.VERSION, "
        "m.NAME FROM MATRIX m JOIN MATRIX_ANNOTATION a ON a.ID = m.ID WHERE m.COLLECTION = "
        "'CORE' AND a.TAG = 'tax_group' AND a.VAL = 'fungi', keeping the highest VERSION per "
        'BASE_ID; SELECT "row", col, val FROM MATRIX_DATA WHERE ID = ? -- '
        "counts[row A/C/G/T][col - 1] = val",
        "n_motifs": len(motifs),
        "motifs": motifs,
    }
    text = json.dumps(document, indent=1)
    # one line per count row and per list of taxon IDs
    text = re.sub(
        r"\[\s*\n\s*([-\d.,\s\"]+?)\s*\]",
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
        text,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(motifs)} matrices)")


if __name__ == "__main__":
    main()
