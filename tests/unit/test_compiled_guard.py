"""A compiled detector module older than its source never runs: the sources do.

Run on a copy of the package (with its compiled modules, when there are any), in a fresh
interpreter, so that touching a source does not affect this session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vigie
import vigie.model

PROBE = """
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import vigie.model.engine as engine
print(engine.__file__)
print([str(w.message) for w in caught])
"""


def run_on_copy(
    tmp_path: Path, *, touch: str = "", with_compiled: bool = True, **env: str
) -> tuple[str, str]:
    """The file ``vigie.model.engine`` came from, and the warnings its import gave."""
    src = Path(vigie.__file__).parent.parent
    copy = tmp_path / "src"
    skip = ("__pycache__",) if with_compiled else ("__pycache__", "*.so")
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns(*skip))
    if touch:
        later = time.time() + 5
        os.utime(copy / "vigie" / "detectors" / touch, (later, later))
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(copy), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    module, warnings = done.stdout.splitlines()[-2:]
    return module, warnings


needs_compiled = pytest.mark.skipif(
    not vigie.model.is_compiled(), reason="nothing compiled (make compile)"
)


@needs_compiled
def test_the_compiled_modules_run_when_they_are_current(tmp_path: Path) -> None:
    module, warnings = run_on_copy(tmp_path)
    assert not module.endswith(".py") and warnings == "[]"


@needs_compiled
def test_an_edited_source_makes_every_detector_run_from_source(tmp_path: Path) -> None:
    module, warnings = run_on_copy(tmp_path, touch="quantiles.py")
    assert module.endswith("engine.py")
    assert "compiled detectors older than their sources (quantiles)" in warnings


@needs_compiled
def test_the_sources_run_on_request(tmp_path: Path) -> None:
    module, warnings = run_on_copy(tmp_path, VIGIE_INTERPRETED="1")
    assert module.endswith("engine.py") and warnings == "[]"


def test_without_compiled_modules_the_sources_run(tmp_path: Path) -> None:
    module, warnings = run_on_copy(tmp_path, with_compiled=False)
    assert module.endswith("engine.py") and warnings == "[]"
