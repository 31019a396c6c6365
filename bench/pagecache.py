"""Drops an executable's pages from the page cache before a memory sample, for bench/init_bench.py
and bench/api_bench.py.

How much of a file a process maps depends on the page cache's state: a file just written (by the
linker or `strip`) sits in large folios, which are mapped whole on the first touch, and gantry's
static binary then measured 4256 KiB where the same file read back from disk measured 1632 KiB
(link/README.md). Evicted, every wrapper is measured as if read fresh from an image.
"""
import os
import shutil


def evict(path):
    path = shutil.which(path) or path
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
