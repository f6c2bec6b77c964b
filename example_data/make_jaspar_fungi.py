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
from pathlib import Path

from make_example_data import MOTIFS
from make_motifs import annotations, jaspar_connection, read_counts

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "gitool" / "attribution" / "data" / "jaspar2024_fungi.json"

# every CORE fungi matrix; the latest version of each base ID is kept
QUERY = """
SELECT m.ID, m.BASE_ID, m.VERSION, m.NAME
FROM MATRIX m JOIN MATRIX_ANNOTATION a ON a.ID = m.ID
WHERE m.COLLECTION = 'CORE' AND a.TAG = 'tax_group' AND a.VAL = 'fungi'
ORDER BY m.BASE_ID, m.VERSION
"""


def read_collection(con: sqlite3.Connection) -> list[dict]:
    latest: dict[str, tuple[int, str, int, str]] = {}
    for internal, base_id, version, name in con.execute(QUERY):
        if base_id not in latest or int(version) > latest[base_id][2]:
            latest[base_id] = (internal, base_id, int(version), name)
    motifs = []
    for internal, base_id, version, name in sorted(latest.values(), key=lambda r: r[1]):
        data_type, tax_ids = annotations(con, internal)
        motifs.append(
            {
                "matrix_id": f"{base_id}.{version}",
                "name": name,
                "base_id": base_id,
                "version": version,
                "collection": "CORE",
                "data_type": data_type,
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
    with jaspar_connection(args.wheels) as con:
        motifs = read_collection(con)
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
