"""The detectors' doctests, on their sources, when this session runs them compiled.

mypyc's compiled classes and functions keep few of their docstrings visible to doctest,
and an example may define a subclass, which compiled classes refuse; the doctests are
the sources' documentation, so they run on the sources, in a pytest of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import vigie.model


@pytest.mark.skipif(
    not vigie.model.is_compiled(), reason="the session collects them itself (not compiled)"
)
def test_every_detector_doctest_passes_on_the_sources() -> None:
    here = Path(vigie.model.__file__).parent
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here)],
        env={**os.environ, "VIGIE_INTERPRETED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
