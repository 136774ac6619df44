"""Timing and peak memory of calls, for the benches: best-of-N wall and CPU time, and two
calls timed alternately in one process (the least noisy ratio on a shared machine)."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable

import torch


class Meter:
    """Synchronisation and peak memory of one device (CUDA allocator or process RSS)."""

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def peak_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux


FIELDS = ("s", "cpu_s", "user_s", "sys_s", "kfaults")


def measure(fn: Callable[[], object], meter: Meter) -> dict[str, float]:
    """One call's wall, CPU, user-CPU and system-CPU seconds and page faults (thousands), all
    of this process; system time is mostly the kernel faulting in fresh memory, which on a
    virtual machine can cost more than the arithmetic (user time)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    meter.sync()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "s": time.perf_counter() - start,
        "cpu_s": time.process_time() - start_cpu,
        "user_s": after.ru_utime - before.ru_utime,
        "sys_s": after.ru_stime - before.ru_stime,
        "kfaults": (after.ru_minflt - before.ru_minflt) / 1e3,
    }


def best_of(fn: Callable[[], object], meter: Meter, repeats: int, warmup: int = 1
            ) -> dict[str, float]:
    """Each field of :func:`measure` at its best over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    meter.sync()
    best = dict.fromkeys(FIELDS, math.inf)
    for _ in range(repeats):
        for field, value in measure(fn, meter).items():
            best[field] = min(best[field], value)
    return best


def time_call(
    fn: Callable[[], object], meter: Meter, repeats: int, warmup: int = 1
) -> tuple[float, float]:
    """Best wall and best CPU seconds (this process) of ``repeats`` calls after ``warmup``.

    CPU time counts only this process's own work, so on a shared machine it varies less
    than wall time; the two agree on a quiet one (1 thread).
    """
    best = best_of(fn, meter, repeats, warmup)
    return best["s"], best["cpu_s"]


def time_alternately(
    first: Callable[[], object], second: Callable[[], object], meter: Meter, repeats: int,
    warmup: int = 1,
) -> dict[str, float]:
    """Each field of :func:`measure` at its best, for ``first`` and ``second`` called
    alternately in this process: both see the same machine state, so their ratio is far less
    noisy on a shared machine than two timings taken minutes apart in separate processes."""
    for _ in range(warmup):
        first()
        second()
    best = {f"{key}_{f}": math.inf for key in ("first", "second") for f in FIELDS}
    for _ in range(repeats):
        for key, fn in (("first", first), ("second", second)):
            for field, value in measure(fn, meter).items():
                best[f"{key}_{field}"] = min(best[f"{key}_{field}"], value)
    return best
