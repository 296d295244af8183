"""Clocks for the load process: a precise timer for open-loop sends, and how busy every
CPU was (Linux).  Standard library only: the load process imports no numpy."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["precise_timer", "proc_stat"]


def precise_timer() -> Any:
    """A timerfd (Linux) for sub-millisecond wake-ups: event-loop timers have 1 ms
    resolution, which would add up to 1 ms of send lag to every open-loop request."""
    if not sys.platform.startswith("linux"):
        return None
    if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)

        class _Ts(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        class _Its(ctypes.Structure):
            _fields_ = [("it_interval", _Ts), ("it_value", _Ts)]

        fd = libc.timerfd_create(1, 0o4000 | 0o2000000)  # MONOTONIC, NONBLOCK|CLOEXEC
        if fd < 0:
            return None
        libc.prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK 1 ns: wake when asked
        settime = libc.timerfd_settime
        spec = _Its()
        ref = ctypes.byref(spec)

        def arm(t: float) -> None:
            sec = int(t)
            spec.it_value.tv_sec = sec
            spec.it_value.tv_nsec = int((t - sec) * 1e9)
            settime(fd, 1, ref, None)  # TFD_TIMER_ABSTIME

        return fd, arm
    except Exception:  # noqa: BLE001 - fall back to the loop's timers
        return None



def proc_stat() -> dict[int, tuple[int, int]] | None:
    """Per-CPU (busy, total) jiffies from /proc/stat (Linux), to tell how busy every CPU
    was during the measured window; None elsewhere."""
    try:
        with open("/proc/stat", "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return None
    out = {}
    for line in lines:
        if line.startswith(b"cpu") and line[3:4].isdigit():
            parts = line.split()
            vals = [int(v) for v in parts[1:9]]  # user nice system idle iowait irq softirq steal
            total = sum(vals)
            out[int(parts[0][3:])] = (total - vals[3] - vals[4], total)
    return out


