"""Writing a stream to JSON-lines files: declarations, ground truth, control results.

- declarations: one :class:`~vigie.contracts.schemas.Declaration` per line, encoded with
  :func:`vigie.contracts.codec.encode`, in lodging order;
- truth: one :class:`~vigie_dev.generator.stream.Truth` per line, same order;
- controls: one :class:`~vigie.contracts.schemas.ControlResult` per inspected declaration,
  sorted by ``controlled_at`` (then declaration id).

The same configuration writes byte-identical files.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from vigie_dev.generator.config import GeneratorConfig
>>> with tempfile.TemporaryDirectory() as tmp:
...     summary = write_files(GeneratorConfig(n=1000, seed=2), Path(tmp) / "d.jsonl")
...     lines = (Path(tmp) / "d.truth.jsonl").read_text().splitlines()
>>> summary["declarations"], len(lines), summary["frauds"]["under_valuation"]
(1000, 1000, 16)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.codec import encode
from vigie.contracts.schemas import ControlResult
from vigie_dev.generator.config import TYPOLOGIES, GeneratorConfig
from vigie_dev.generator.stream import items, simulate

Progress = Callable[[int], None]
"""Called with the number of declarations written since the last call."""


def default_truth_path(out: Path) -> Path:
    """``<out stem>.truth.jsonl`` beside the declarations file.

    >>> default_truth_path(Path("data/decl.jsonl")).as_posix()
    'data/decl.truth.jsonl'
    """
    return out.with_name(f"{out.stem}.truth.jsonl")


def write_files(
    config: GeneratorConfig,
    out: Path,
    controls: Path | None = None,
    truth: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the stream of ``config``; return counts per file and per typology.

    Without ``controls`` no control file is written; ``truth`` defaults to
    :func:`default_truth_path`.
    """
    truth = truth or default_truth_path(out)
    for path in (out, controls, truth):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    sim = simulate(config)
    frauds: Counter[str] = Counter()
    results: list[ControlResult] = []
    with out.open("wb") as decl_file, truth.open("wb") as truth_file:
        for i, item in enumerate(items(sim), start=1):
            decl_file.write(encode(item.declaration) + b"\n")
            truth_file.write(orjson.dumps(item.truth) + b"\n")
            if item.truth.typology is not None:
                frauds[item.truth.typology] += 1
            if item.control is not None:
                results.append(item.control)
            if progress is not None and i % 5000 == 0:
                progress(5000)
    if progress is not None:
        progress(len(sim) % 5000)
    if controls is not None:
        _write_controls(controls, results)
    return {
        "declarations": len(sim),
        "exports": len(sim.exports),
        "controls": len(results),
        "frauds": {t: frauds[t] for t in TYPOLOGIES},
        "path": str(out),
        "truth_path": str(truth),
        "controls_path": str(controls) if controls is not None else None,
    }


def _write_controls(path: Path, results: list[ControlResult]) -> None:
    results.sort(key=lambda r: (r.controlled_at, r.declaration_id))
    with path.open("wb") as f:
        for result in results:
            f.write(encode(result) + b"\n")
