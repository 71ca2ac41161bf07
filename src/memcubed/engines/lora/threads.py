"""How many torch threads consolidation computes with, set while it runs and restored after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MAX_DEFAULT_THREADS", "torch_threads", "train_threads"]

MAX_DEFAULT_THREADS = 4
"""The default never asks for more: a 135M-parameter model gains little beyond a few cores."""


def train_threads(configured: int = 0) -> int:
    """The threads a consolidation uses: ``configured`` when > 0, else ``$OMP_NUM_THREADS`` when it is set
    (a process told to keep to that many, as pytest-xdist workers are), else the cores this process may run
    on that other work leaves idle (the cores less the 1-minute load average, rounded), at least 1 and at
    most ``MAX_DEFAULT_THREADS``.

    Several threads on cores that other work keeps busy are far slower than one: each parallel region
    waits for a thread the OS has not scheduled. Measured on 2 cores at load 8 (20 control prompts, 8
    decoding steps, alternated in one process): 1 thread 10.4–12.1 s wall and 2.4–2.6 CPU s; 2 threads
    58–87 s wall and 19–27 CPU s. A fresh process's one-fact consolidate at load 3–5 took 32 CPU s with
    1 thread; with 2, the process had used 164 CPU s after 4 minutes and not finished. One thread too few
    costs at most the cores' speed-up, one too many several times over, so only idle cores are counted.
    """
    if configured > 0:
        return configured
    told = os.environ.get("OMP_NUM_THREADS", "").strip()
    if told.isdigit() and int(told) > 0:
        return int(told)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    idle = cores - os.getloadavg()[0] if hasattr(os, "getloadavg") else float(cores)
    return max(1, min(cores, MAX_DEFAULT_THREADS, int(idle + 0.5)))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, then restore the number it had.

    Set in a thread other than the process's first (a job worker thread of ``memcubed serve``), the number
    stays in that thread: torch's OpenMP build keeps it per thread (torch 2.13: ``get_num_threads`` in the
    main thread is unchanged while the block runs). Set in the first thread, it is the process's default
    for the block's duration.
    """
    import torch

    before = torch.get_num_threads()
    if threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
