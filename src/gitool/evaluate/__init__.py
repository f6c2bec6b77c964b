"""Evaluating trained runs: per-track coverage metrics (Genomic Interpreter Table 1 and
Fig. 2-3) and per-task label metrics (GLIFAC paper)."""
