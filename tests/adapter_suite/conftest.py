"""Every adapter test ends with the threads and file descriptors it started with."""

from __future__ import annotations

from leaks import nothing_left_behind

__all__ = ["nothing_left_behind"]
