"""Offline evaluation of the risk engine as it runs in service.

:mod:`~vigie.evaluation.protocol` replays labelled declarations through the engine
(closed loop or full information), :mod:`~vigie.evaluation.injection` injects known frauds,
:mod:`~vigie.evaluation.baselines` and :mod:`~vigie.evaluation.comparison` run the naive
baselines on the same stream, :mod:`~vigie.evaluation.metrics` and
:mod:`~vigie.evaluation.report` measure. See docs/evaluation.md.
"""

from vigie.evaluation.examples import Example, duty
from vigie.evaluation.metrics import auc, ranking_metrics, selection_metrics, top_k
from vigie.evaluation.protocol import Trace, prequential
from vigie.evaluation.report import compare, metrics

__all__ = [
    "Example",
    "Trace",
    "auc",
    "compare",
    "duty",
    "metrics",
    "prequential",
    "ranking_metrics",
    "selection_metrics",
    "top_k",
]
