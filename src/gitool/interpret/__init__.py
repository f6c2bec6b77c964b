"""Model interpretation: attention export, rollout and plots."""

from gitool.interpret.attention import (
    AttentionSummary,
    AttentionWindow,
    attention_from_run,
    attention_layout,
    extract_attention,
    load_window,
    windows_from_fasta,
    windows_from_regions,
    windows_from_store,
)
from gitool.interpret.rollout import attention_rollout

__all__ = [
    "AttentionSummary",
    "AttentionWindow",
    "attention_from_run",
    "attention_layout",
    "attention_rollout",
    "extract_attention",
    "load_window",
    "windows_from_fasta",
    "windows_from_regions",
    "windows_from_store",
]
