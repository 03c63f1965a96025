"""Collection rules for the whole repository: the tests and the doctests in ``src``."""

from __future__ import annotations

from pathlib import Path

import vigie.model


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Compiled detectors hide most of their doctests: they run on the sources instead.

    ``tests/unit/test_detector_doctests.py`` runs every doctest of ``vigie.model``
    in a pytest of its own on the sources (``VIGIE_INTERPRETED=1``).
    """
    if collection_path.parent == vigie.model.HERE and collection_path.suffix == ".py":
        return vigie.model.is_compiled() or None
    return None
