"""The engine's time a declaration when its batches are separated by pauses.

In a backlog the worker scores batches back to back; at a steady rate it waits for the
next records between small batches. This runs one RiskEngine in process over the same
generated declarations, in batches of ``B``, with a pause of ``P`` ms before each batch
(slept, or spent spinning in Python), and prints the engine's own time a declaration
(``score_one`` then ``learn_one``, the pauses not counted). Each setting is run
``--repeat`` times, alternated; compare within one run.

Usage::

    PYTHONPATH=build/compiled .venv/bin/python bench/engine_pauses.py [--n 40000] [--repeat 2]

>>> engine_us(declarations(200, seed=1), batch=50, pause_s=0.0, spin=False) > 0
True
"""

from __future__ import annotations

import argparse
import statistics
import time

from vigie.contracts.schemas import Declaration
from vigie.model.engine import RiskEngine
from vigie_dev.generator import generate

SETTINGS = (
    (500, 0.0, False),
    (30, 0.0, False),
    (30, 0.0005, False),
    (30, 0.002, False),
    (30, 0.002, True),
    (30, 0.010, False),
    (100, 0.002, False),
    (300, 0.002, False),
)
"""(batch, pause in seconds, spinning instead of sleeping)."""


def declarations(n: int, seed: int) -> list[Declaration]:
    """``n`` generated declarations, in lodging order."""
    return [item.declaration for item in generate(n, seed=seed)]


def engine_us(decls: list[Declaration], *, batch: int, pause_s: float, spin: bool) -> float:
    """A fresh engine over ``decls``: its mean time a declaration, in microseconds."""
    engine = RiskEngine(seed=0)
    spent = 0.0
    for start in range(0, len(decls), batch):
        if pause_s and spin:
            end = time.perf_counter() + pause_s
            while time.perf_counter() < end:
                pass
        elif pause_s:
            time.sleep(pause_s)
        began = time.perf_counter()
        for decl in decls[start : start + batch]:
            engine.score_one(decl)
            engine.learn_one(decl)
        spent += time.perf_counter() - began
    return spent / len(decls) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    decls = declarations(args.n, args.seed)
    times: dict[tuple[int, float, bool], list[float]] = {s: [] for s in SETTINGS}
    for _ in range(args.repeat):
        for batch, pause_s, spin in SETTINGS:
            times[batch, pause_s, spin].append(
                engine_us(decls, batch=batch, pause_s=pause_s, spin=spin)
            )
    for (batch, pause_s, spin), values in times.items():
        how = "spinning" if spin else "sleeping"
        pause = f"{pause_s * 1e3:g} ms {how}" if pause_s else "no pause"
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(
            f"batches of {batch:3d}, {pause:18s}: {statistics.median(values):6.1f} us "
            f"a declaration (runs {runs})"
        )


if __name__ == "__main__":
    main()
