"""Hand the C allocator's free memory back to the system as a long simulation goes.

glibc keeps the memory of freed tensors in its arenas, and a simulation frees a state per worker
per iteration, in another order than it made them. Measured with 100 workers: the live tensors
stay the same (5,416 tensors, 212 MB) from 4 to 8 virtual seconds while the resident size grows
909 → 994 MB; `malloc_trim(0)` then gives back 93–141 MB. A no-op where the C library has no
`malloc_trim` (macOS)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def release_free_memory() -> None:
    """Return the allocator's free pages to the system (a few milliseconds for a large heap)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
