"""The compiled model (``make compiled``, in build/compiled) assesses exactly as the sources.

The same stream goes through the sources, in this process, and through the compiled build,
in a subprocess with ``PYTHONPATH=build/compiled``; the build's engine is snapshotted and
restored half-way, as a worker's is (a full snapshot, then a delta), so the snapshots of the
compiled model must restore exactly. Skipped when nothing is built, unless
``VIGIE_REQUIRE_COMPILED=1`` (CI builds it first): then a missing build fails.
"""

from __future__ import annotations

import heapq
import importlib.machinery
import os
import pickle
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import vigie.model
from vigie.contracts.schemas import ControlResult
from vigie.model.assessment import Assessment
from vigie.model.engine import RiskEngine
from vigie.worker.increments import dumps, forget_changes, restore
from vigie.worker.state import PartitionState
from vigie_dev.generator import generate

pytestmark = pytest.mark.compiled

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "compiled"
N = 4000

IN_THE_BUILD = f"""
import pickle, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import vigie.model.engine
from test_compiled import assessments
pickle.dump((vigie.model.engine.__file__, assessments({N}, {N // 2})), sys.stdout.buffer)
"""


def assessments(n: int, restore_at: int = -1) -> list[Assessment]:
    """Generated declarations, test-then-train, every label revealed two days later; the
    engine is snapshotted whole half-way to ``restore_at``, then restored from that and a
    delta before declaration ``restore_at``, taken after an amendment was scored and not
    learnt (the engine then holds what it read of it)."""
    engine = RiskEngine()
    out = []
    queue: list[tuple[float, int, ControlResult]] = []
    full = b""
    items = list(generate(n, seed=5))
    for seq, item in enumerate(items):
        if seq == restore_at // 2:
            full = dumps(PartitionState(0, engine), full=True)
            forget_changes(PartitionState(0, engine))
        if seq == restore_at:
            before = items[seq - 1].declaration
            engine.score_one(before.model_copy(update={"customs_value_eur": 1.0}))
            delta = dumps(PartitionState(0, engine), full=False)
            engine = restore([full, delta]).engine
        decl = item.declaration
        now = decl.lodged_at.timestamp()
        while queue and queue[0][0] <= now:
            engine.learn_control(heapq.heappop(queue)[2])
        out.append(engine.score_one(decl))
        engine.learn_one(decl)
        label = ControlResult(
            declaration_id=decl.declaration_id,
            controlled_at=decl.lodged_at + timedelta(days=2),
            outcome="infraction" if item.truth.typology else "compliant",
            selection="other",
        )
        heapq.heappush(queue, (label.controlled_at.timestamp(), seq, label))
    return out


def compiled_build() -> Path:
    """build/compiled, or a skip (a failure with VIGIE_REQUIRE_COMPILED=1) without it."""
    if (BUILD / ".built").is_file():
        return BUILD
    reason = f"no compiled model in {BUILD} (`make compiled` builds it)"
    if os.environ.get("VIGIE_REQUIRE_COMPILED") == "1":
        pytest.fail(f"{reason}, and VIGIE_REQUIRE_COMPILED=1")
    pytest.skip(reason)


def test_the_compiled_model_assesses_as_the_sources() -> None:
    build = compiled_build()
    done = subprocess.run(
        [sys.executable, "-c", IN_THE_BUILD],
        env={**os.environ, "PYTHONPATH": str(build)},
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    module, compiled = pickle.loads(done.stdout)
    assert not module.endswith(".py"), f"the build ran {module}, not a compiled module"
    sources = assessments(N)
    assert len(compiled) == len(sources) == N
    differ = [i for i, (a, b) in enumerate(zip(compiled, sources, strict=True)) if a != b]
    assert not differ, (
        f"{len(differ)} of {N} assessments differ, first #{differ[0]}: compiled "
        f"{compiled[differ[0]]!r}, sources {sources[differ[0]]!r} (an old build? "
        "`make compiled` rebuilds it)"
    )
    assert sum(a.selected for a in sources) > 0 and sources[-1].model_versions["combiner"] != (
        "combiner-0"
    )


def test_no_compiled_module_shadows_the_sources() -> None:
    """A compiled module next to its source would be imported instead of it."""
    here = Path(vigie.model.__file__).parent
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = sorted(p.name for p in here.iterdir() if p.name.endswith(suffixes))
    assert not found, f"compiled modules in {here} (remove them): {found}"
