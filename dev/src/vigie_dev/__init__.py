"""Vigie's development part: the local stack, the generator, the demo and test support.

Installed beside the runtime package by ``make demo`` and ``make test`` (``pip install -e
dev``), never in the production image. It adds ``vigie stack``, ``vigie generate`` and
``vigie demo`` to the ``vigie`` command.
"""
