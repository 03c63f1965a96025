"""Synthetic import declarations with labelled fraud: a realistic, deterministic stream.

The public API:

- :func:`generate` ``(n, seed=0, *, start, days, fraud_share, inspected_share,
  audit_share) -> Iterator[GeneratedItem]``: declarations in lodging order, each with
  its :class:`Truth` and, when inspected, its ``ControlResult``;
- :func:`stream` ``(config) -> Iterator[GeneratedItem]`` for a full
  :class:`GeneratorConfig`; :func:`simulate` ``(config) -> Simulation`` for the columns;
- :func:`write_files` ``(config, out, controls=None, truth=None, progress=None)``.

Examples
--------
>>> from vigie_dev.generator import generate
>>> first = next(generate(500, seed=3))
>>> first.declaration.office[:2], first.truth.typology, first.declaration.lodged_at.tzname()
('FR', None, 'UTC')
"""

from __future__ import annotations

from vigie_dev.generator.config import DEFAULT_MIX, TYPOLOGIES, GeneratorConfig
from vigie_dev.generator.stream import GeneratedItem, Simulation, Truth, generate, simulate, stream
from vigie_dev.generator.writer import default_truth_path, write_files

__all__ = [
    "DEFAULT_MIX",
    "TYPOLOGIES",
    "GeneratedItem",
    "GeneratorConfig",
    "Simulation",
    "Truth",
    "default_truth_path",
    "generate",
    "simulate",
    "stream",
    "write_files",
]
