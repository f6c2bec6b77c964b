"""Model interpretation: attention export, rollout and plots."""

from gitool.interpret.attention import (
    AttentionSummary,
    attention_from_run,
    extract_attention,
    load_window,
)
from gitool.interpret.layers import attention_layout
from gitool.interpret.rollout import attention_rollout
from gitool.interpret.windows import (
    AttentionWindow,
    windows_from_fasta,
    windows_from_regions,
    windows_from_store,
)

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
