"""Where the machine's cores went during a measured window, read from ``/proc``.

A throughput figure on a shared two-core machine says little without the CPU behind it.
:class:`CpuWindow` reads, at the start and the end of a window, the CPU time of every
thread of the processes it watches (``/proc/<pid>/task/<tid>/stat``), how long each
waited runnable for a core (``schedstat``), and the whole machine's busy and stolen time
(``/proc/stat``). From the two readings:

* each process's cores (CPU seconds per second of the window), its busiest thread's (the
  worker's scoring thread) and that thread's *run-queue wait*: the share of the window it
  was ready to run but had no core. A thread at 0.7 cores waiting 0.3 is CPU-starved,
  not idle;
* the machine's busy and stolen cores, everything included.

Why it bounds scaling: if one worker keeps the machine busy at ``B`` of its ``C`` cores,
each declaration costs ``B / rate`` CPU seconds in all (worker, broker, clients), so no
number of workers can go past ``C / B`` times that rate while the cost per declaration
holds (:func:`scaling_bound`).

Examples
--------
>>> import os
>>> window = CpuWindow({"me": os.getpid()})
>>> sum(range(200_000)) > 0
True
>>> figures = window.close()
>>> sorted(figures["processes"]["me"])
['busiest_cores', 'busiest_thread', 'busiest_waiting', 'cores']
>>> figures["machine"]["cores"] == os.cpu_count()
True
>>> scaling_bound({"machine": {"cores": 2, "busy_cores": 1.25}})
1.6
>>> cost_per_record({"machine": {"busy_cores": 1.2}, "processes": {"worker-0":
...     {"cores": 1.06, "busiest_cores": 0.98}, "broker": {"cores": 0.12,
...     "busiest_cores": 0.05}}}, 8000.0, workers=["worker-0"])
{'machine': 150.0, 'busiest_threads': 122.5, 'worker-0': 132.5, 'broker': 15.0}
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadTimes:
    """One thread's name, CPU seconds (user and system) and seconds waiting for a core."""

    name: str
    cpu_s: float
    waiting_s: float


_NOT_YET = ThreadTimes("", 0.0, 0.0)


def thread_times(pid: int) -> dict[int, ThreadTimes]:
    """Every thread of ``pid`` (empty once the process is gone)."""
    out: dict[int, ThreadTimes] = {}
    try:
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return out
    for tid in tids:
        task = Path(f"/proc/{pid}/task/{tid}")
        try:
            stat = (task / "stat").read_text()
            schedstat = (task / "schedstat").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3, state
        cpu = (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime
        out[tid] = ThreadTimes(name, cpu, int(schedstat[1]) / 1e9)
    return out


def machine_times() -> tuple[float, float]:
    """Seconds the machine's cores were busy, and stolen by the hypervisor, since boot."""
    words = Path("/proc/stat").read_text().splitlines()[0].split()
    ticks = [int(w) for w in words[1:9]]  # user nice system idle iowait irq softirq steal
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy * TICK_S, ticks[7] * TICK_S


class CpuWindow:
    """The CPU of the named processes and of the machine from now to :meth:`close`.

    Parameters
    ----------
    pids
        The processes to account for, by name (a worker, the broker).
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.began = time.monotonic()
        self._machine = machine_times()
        self._threads = {name: thread_times(pid) for name, pid in pids.items()}

    def close(self) -> dict[str, Any]:
        """The window's figures: cores per process and for the machine (see the module)."""
        seconds = max(1e-9, time.monotonic() - self.began)
        busy, stolen = machine_times()
        processes = {}
        for name, pid in self.pids.items():
            before = self._threads[name]
            spent = {}
            for tid, t in thread_times(pid).items():
                b = before.get(tid, _NOT_YET)  # a thread started within the window
                spent[tid] = (t.name, t.cpu_s - b.cpu_s, t.waiting_s - b.waiting_s)
            if not spent:
                continue
            busiest = max(spent.values(), key=lambda s: s[1])
            processes[name] = {
                "cores": round(sum(s[1] for s in spent.values()) / seconds, 2),
                "busiest_thread": busiest[0],
                "busiest_cores": round(busiest[1] / seconds, 2),
                "busiest_waiting": round(busiest[2] / seconds, 2),
            }
        return {
            "seconds": round(seconds, 2),
            "processes": processes,
            "machine": {
                "cores": os.cpu_count(),
                "busy_cores": round((busy - self._machine[0]) / seconds, 2),
                "stolen_cores": round((stolen - self._machine[1]) / seconds, 2),
            },
        }


def scaling_bound(figures: dict[str, Any]) -> float | None:
    """``cores / busy cores`` of a window: the most that more processes doing the same
    work at the same CPU per record could add, on this machine, to its rate."""
    machine = figures.get("machine", {})
    busy, cores = machine.get("busy_cores"), machine.get("cores")
    if not busy or not cores:
        return None
    return round(float(cores) / float(busy), 2)


def cost_per_record(
    figures: dict[str, Any], per_s: float | None, workers: list[str]
) -> dict[str, float] | None:
    """CPU microseconds per record at ``per_s`` records a second over the window: the whole
    machine's, the busiest threads of the ``workers`` processes together (their scoring
    threads), and each process's. What sizing rests on: a declaration costs this much CPU
    wherever it runs. Over a window of a second or less, the machine's figure is coarse
    (the kernel accounts idle time lazily)."""
    if not per_s:
        return None
    out = {"machine": figures["machine"]["busy_cores"]}
    processes = figures["processes"]
    out["busiest_threads"] = sum(processes[w]["busiest_cores"] for w in workers if w in processes)
    out.update({name: p["cores"] for name, p in processes.items()})
    return {name: round(cores / per_s * 1e6, 1) for name, cores in out.items()}
