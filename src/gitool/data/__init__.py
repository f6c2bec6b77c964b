"""Genome, tracks, windows and the memory-mapped training store.

Submodules are imported explicitly; ``gitool.data.dataset`` is the only one that needs
torch.
"""
