"""Builds Vigie; with ``VIGIE_COMPILE=1``, also compiles the model with mypyc.

The per-declaration modules of ``vigie.model`` are typed Python (mypy strict); mypyc
turns them into C extensions. mypyc type-checks against the installed dependencies, so
build without isolation, once they are installed. The compiled build is installed apart
from the sources, never next to them:

    make compiled   # VIGIE_COMPILE=1 pip install --no-deps --no-build-isolation \
                    #     --target build/compiled .   then PYTHONPATH=build/compiled
    docker build -f docker/Dockerfile .                 # the image installs it

Not compiled: the package's ``__init__``, the plain output types (``assessment``), and
what does not run per declaration (``checks``). The evaluation (``vigie.evaluation``) is
another package: never compiled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup

NOT_COMPILED = {"__init__.py", "assessment.py", "checks.py"}
MODEL = sorted(
    str(path) for path in Path("src/vigie/model").glob("*.py") if path.name not in NOT_COMPILED
)

# pip asks for the metadata first (``setup.py dist_info``), then builds the wheel: mypyc
# compiles when setup.py runs, so compiling for the metadata too would double the build.
METADATA_ONLY = bool({"dist_info", "egg_info"} & set(sys.argv))

ext_modules = []
if os.environ.get("VIGIE_COMPILE") == "1" and not METADATA_ONLY:
    from mypyc.build import mypycify

    ext_modules = mypycify(MODEL, opt_level="3")

setup(ext_modules=ext_modules)
