"""Builds Vigie; with ``VIGIE_COMPILE=1``, also compiles the detectors with mypyc.

The per-declaration modules of ``vigie.model`` are typed Python (mypy strict); mypyc
turns them into C extensions that score and learn about 1.4 times faster (measured with
``bench/bench_engine.py``). The sources stay the reference: they run as they are when
nothing is compiled, and ``vigie.model`` falls back to them when a compiled module
is older than its source. mypyc type-checks against the installed dependencies, so build
without isolation, once they are installed:

    VIGIE_COMPILE=1 python setup.py build_ext --inplace       # next to the sources (make)
    VIGIE_COMPILE=1 pip install --no-build-isolation .         # into an image

Not compiled: the package's ``__init__`` (it chooses between compiled and sources) and
``evaluation`` (the offline evaluation loop, not per declaration).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

NOT_COMPILED = {"__init__.py", "evaluation.py"}
DETECTORS = sorted(
    str(path) for path in Path("src/vigie/model").glob("*.py") if path.name not in NOT_COMPILED
)

ext_modules = []
if os.environ.get("VIGIE_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(DETECTORS, opt_level="3")

setup(ext_modules=ext_modules)
