"""Training (``gitool train``), checkpoints, losses and metrics. Imports torch."""
