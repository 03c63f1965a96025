"""Pure online detectors (River style): no I/O, picklable, test-then-train.

The per-declaration modules are plain, typed Python. ``make compile`` (run by ``make
test``; see ``setup.py``) also compiles them with mypyc, about 1.4 times faster; the
compiled modules then sit next to their sources and Python imports them first. Two guards
keep that honest:

- a compiled module older than its source (the source was edited or checked out since)
  is never used: the sources run instead, with a :class:`StaleCompiledWarning`;
- ``VIGIE_INTERPRETED=1`` runs the sources on purpose (debugging, profiling by part).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent


class StaleCompiledWarning(RuntimeWarning):
    """Compiled detectors older than their sources: the sources run instead (slower)."""


def compiled_modules() -> dict[str, Path]:
    """Each compiled module's file by its source's stem (empty when nothing is compiled)."""
    found: dict[str, Path] = {}
    for path in HERE.iterdir():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:  # the longest first
            if path.name.endswith(suffix):
                found[path.name.removesuffix(suffix)] = path
                break
    return found


def stale_modules() -> list[str]:
    """The compiled modules whose source is newer than them (or gone)."""
    stale = []
    for stem, compiled in sorted(compiled_modules().items()):
        source = HERE / f"{stem}.py"
        if not source.exists() or source.stat().st_mtime > compiled.stat().st_mtime:
            stale.append(stem)
    return stale


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds ``vigie.model.<module>`` in its ``.py`` file, never in a compiled one."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, stem = fullname.rpartition(".")
        source = HERE / f"{stem}.py"
        if package != __name__ or not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _choose_implementation() -> None:
    if not compiled_modules():
        return
    if os.environ.get("VIGIE_INTERPRETED") == "1":
        sys.meta_path.insert(0, _SourcesFirst())
    elif stale := stale_modules():
        sys.meta_path.insert(0, _SourcesFirst())
        warnings.warn(
            f"compiled detectors older than their sources ({', '.join(stale)}): running the "
            "sources instead; `make compile` rebuilds them",
            StaleCompiledWarning,
            stacklevel=2,
        )


def is_compiled() -> bool:
    """Whether the detectors run compiled (mypyc) in this process."""
    from vigie.model import engine

    return not str(engine.__file__).endswith(".py")


_choose_implementation()

from vigie.model.atypicality import AtypicalityDetector  # noqa: E402
from vigie.model.valuation import ValuationDetector  # noqa: E402

__all__ = [
    "AtypicalityDetector",
    "StaleCompiledWarning",
    "ValuationDetector",
    "is_compiled",
]
