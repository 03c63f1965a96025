"""Pure online models (River style): no I/O, picklable, test-then-train.

Each model takes a :class:`~vigie.contracts.schemas.Declaration` (and, to learn from
controls, a :class:`~vigie.contracts.schemas.ControlResult`) and returns plain values
(:mod:`vigie.model.assessment`); :mod:`vigie.model.checks` holds the checks every model
passes.
"""
