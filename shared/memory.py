"""Handing freed memory back to the operating system between slices.

A slice allocates and frees tens of MB (page bodies, records, couplings) on many threads; glibc keeps
what is freed in per-thread arenas and in the heap, so a worker's RSS creeps up slice after slice although
Python holds no more objects. ``malloc_trim(0)`` returns the free pages (glibc only; elsewhere nothing
happens). ``MALLOC_ARENA_MAX`` (an app setting, read when the process starts) bounds the arenas.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import resource


@functools.cache
def _trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


def release() -> None:
    """Return the process's free heap memory to the operating system, where the C library can."""
    trim = _trim()
    if trim is not None:
        trim(0)


def usage_mb() -> tuple[float | None, float]:
    """(resident now, peak so far) of this process in MB; now is None where /proc is missing."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    try:
        with open("/proc/self/statm") as f:
            now = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        now = None
    return now, max(peak, now or 0.0)
