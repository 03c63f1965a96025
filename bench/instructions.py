"""Instructions a declaration: the worker's processing or the engine alone, under callgrind.

On a shared machine the wall clock of the same build moves by more than most changes (the
worker's processing from 6,256 to 10,272 declarations/s in four runs of one hour). The
count of instructions executed does not depend on the neighbours: valgrind's callgrind
counts them, and only while the measured loop runs (``--toggle-collect`` on the
``functools.reduce`` that drives it), so generating and encoding the declarations and the
warm-up are left out. Cache misses are not counted: a change that saves lookups in large
tables may save more time than its instructions say, and one that only saves instructions
may save less. Compare builds with the same arguments:

    PYTHONPATH=build/compiled .venv/bin/python bench/instructions.py [--what worker|engine]
        [--n 3000] [--warmup 1000] [--seed 11] [--days 4]

The world's declarations are spread over ``--days`` event-time days: 4 for 4,000 is about
the density of ``vigie bench``'s world (100,000 over 90 days). The daily quota computes its
thresholds once a day; a world of 4,000 declarations over the generator's 90 days would
count that computation 90 times, a third of all instructions, where service pays it once
for thousands of declarations.

``worker``: :func:`vigie.worker.processing.score_and_learn` on encoded records (decoding,
the replay guard, the engine, the Score's JSON), no Kafka. ``engine``: ``score_one`` then
``learn_one`` on decoded declarations. Needs valgrind (Debian's ``valgrind`` package);
about a minute at the defaults.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_INSIDE = "VIGIE_INSTRUCTIONS_INSIDE"


def measured_loop(what: str, n: int, warmup: int, seed: int, days: int) -> None:
    """Run ``warmup`` declarations, then ``n`` inside ``functools.reduce`` (counted)."""
    from vigie.contracts.codec import encode
    from vigie.model.engine import RiskEngine
    from vigie.settings import get_settings
    from vigie.worker.processing import score_and_learn
    from vigie.worker.state import PartitionState
    from vigie_dev.generator import generate

    declarations = [item.declaration for item in generate(warmup + n, seed=seed, days=days)]
    engine = RiskEngine(**get_settings().engine.options())
    state = PartitionState(0, engine)

    def score_then_learn(_: Any, decl: Any) -> None:
        engine.score_one(decl)
        engine.learn_one(decl)

    def process(_: Any, record: Any) -> None:
        score_and_learn(state, record[0], record[1], source_topic="declarations")

    step: Callable[[Any, Any], None]
    items: list[Any]
    if what == "engine":
        step, items = score_then_learn, declarations
    else:
        step, items = process, [(d.declaration_id.encode(), encode(d)) for d in declarations]
    for item in items[:warmup]:
        step(None, item)
    # what outlived the warm-up leaves the collector's sight, as the worker freezes its
    # state after each checkpoint (vigie.worker.loop)
    gc.collect()
    gc.freeze()
    functools.reduce(step, items[warmup:], None)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--what", choices=["worker", "engine"], default="worker")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--days", type=int, default=4, help="event-time days of the world")
    args = parser.parse_args()
    if os.environ.get(_INSIDE):
        measured_loop(args.what, args.n, args.warmup, args.seed, args.days)
        return
    command = [
        "valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
        "--callgrind-out-file=/dev/null", sys.executable, *sys.argv,
    ]  # fmt: skip
    run = subprocess.run(
        command, env={**os.environ, _INSIDE: "1"}, capture_output=True, text=True, check=True
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        sys.exit(f"no count in valgrind's output:\n{run.stderr[-2000:]}")
    total = int(found.group(1))
    print(
        f"{args.what}: {total / args.n:,.0f} instructions a declaration "
        f"({args.n} declarations after {args.warmup}, seed {args.seed}, {args.days} days)"
    )


if __name__ == "__main__":
    main()
