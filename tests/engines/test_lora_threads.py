"""Consolidation's torch threads: a setting, else $OMP_NUM_THREADS, else the idle cores (1 to 4); set while it runs
(in a job worker thread: for that thread only), and restored after, also when the work raises."""

from __future__ import annotations

import os
import threading

import pytest

from memcubed.engines.lora.threads import MAX_DEFAULT_THREADS, torch_threads, train_threads
from memcubed.settings import Settings


def test_the_setting_wins_then_the_environment_then_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert train_threads(3) == 3
    assert train_threads(0) == 1
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # a quiet machine
    for junk in ("", "0", "-2", "two", "1e3"):  # not a positive count: the cores decide
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert train_threads(0) == max(1, min(cores, MAX_DEFAULT_THREADS))
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert train_threads(0) == max(1, min(cores, MAX_DEFAULT_THREADS))
    for load in (float(cores), cores - 1.0, 40.0):  # every core busy already, or all but one
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 1.0, 1.0))
        assert train_threads(0) == 1 and train_threads(2) == 2
    monkeypatch.setenv("MEMCUBED_TRAIN_THREADS", "2")
    assert Settings().train_threads == 2
    monkeypatch.setenv("MEMCUBED_TRAIN_THREADS", "-1")
    with pytest.raises(ValueError):
        Settings()


def test_threads_are_set_for_the_block_in_its_own_thread_and_restored() -> None:
    import torch

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    seen: dict[str, int] = {}
    inside, done = threading.Event(), threading.Event()

    def job() -> None:  # a job worker thread, as `memcubed serve` runs consolidations
        with torch_threads(other):
            seen["inside"] = torch.get_num_threads()
            inside.set()
            done.wait(30)
        seen["after"] = torch.get_num_threads()

    thread = threading.Thread(target=job)
    thread.start()
    assert inside.wait(30)
    seen["main"] = torch.get_num_threads()  # the request threads' number is not the job's
    done.set()
    thread.join()
    assert seen == {"inside": other, "main": before, "after": before}
    with pytest.raises(RuntimeError), torch_threads(other):
        raise RuntimeError("the work failed")
    assert torch.get_num_threads() == before
