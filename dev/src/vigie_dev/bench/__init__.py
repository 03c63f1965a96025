"""``vigie bench``: how fast the engine runs, against what a plain loop does.

One command measures, on the local stack and on the same generated declarations, the
raw consumer (:mod:`.raw`), the detectors alone (:mod:`.detectors`), the peer loop
(``bench/peer_loop.py``), the worker end to end to Kafka and to ClickHouse
(:mod:`.worker`), production-to-alert latency at steady rates (:mod:`.latency`), several
workers sharing the partitions, and the worker's peak memory; :mod:`.runner` runs them
in order and computes the ratios and the issue's targets, :mod:`.report` prints and
records them. Nothing here asserts a timing: a benchmark reports.
"""

from __future__ import annotations
