"""Host (CPU) memory of a training process: measure it, and hand freed memory back.

GRPO on CPU allocates tensors of a different shape at every step (prompts and
completions vary in length). glibc's allocator keeps the freed blocks in its heaps, where
the next step's differently sized tensors often do not fit, so the resident set of a
SmolLM2 GRPO run grew by about 1.2 GB per step until the kernel killed it.
``malloc_trim(0)`` returns the free pages of every heap to the system; calling it once per
optimizer step costs milliseconds. :class:`HostMemoryCallback` does that and logs the
resident set as ``memory/rss_gb`` so a run's ``metrics.jsonl`` shows whether it holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache
from typing import Any


def rss_gb() -> float | None:
    """This process's resident set size in GB (10^9 bytes); None where ``/proc`` is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        return None
    return None


@lru_cache(maxsize=1)
def _libc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # glibc only: musl and others lack it
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the OS (glibc ``malloc_trim(0)``).

    Returns:
        True if the allocator released something, False if nothing was released or the
        C library has no ``malloc_trim``.
    """
    trim = _libc_trim()
    return bool(trim(0)) if trim is not None else False


def host_memory_callback() -> Any:
    """A transformers ``TrainerCallback``: :func:`release_freed_memory` after every optimizer
    step, and ``memory/rss_gb`` (after the release) added to every log record.

    Put it before the callback that writes the log records, so they carry the field.
    """
    from transformers import TrainerCallback

    class HostMemoryCallback(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            release_freed_memory()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **_: Any) -> None:
            rss = rss_gb()
            if logs is not None and rss is not None:
                logs["memory/rss_gb"] = round(rss, 3)

    return HostMemoryCallback()
