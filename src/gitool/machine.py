"""Facts about the machine gitool runs on."""

from __future__ import annotations

import os


def cpu_count() -> int:
    """Cores this process may use (``sched_getaffinity`` is Linux-only)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
