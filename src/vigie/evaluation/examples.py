"""One evaluated declaration: the declaration, its control result, and what is known of it.

An :class:`Example` carries the control result the files give (if any) and, when known,
the ground truth used for the metrics (the generator's truth, or an injected fraud). Its
:attr:`~Example.label` is what an inspection of it would find; :func:`duty` is the duty
the metrics count as at stake for it.

>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> Example(decl, None).label is None, Example(decl, None, fraud=True).label
(True, True)
>>> duty(Example(decl, None)) == decl.customs_value_eur * decl.duty_rate_pct / 100
True
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from vigie.contracts.schemas import ControlResult, Declaration

MAX_DUTY_EUR = 1e15


class _Generated(Protocol):
    @property
    def declaration(self) -> Declaration: ...
    @property
    def control(self) -> ControlResult | None: ...
    @property
    def truth(self) -> Any: ...


class Example(NamedTuple):
    """A declaration, its inspection (if any) and its ground truth (if known)."""

    declaration: Declaration
    control: ControlResult | None
    fraud: bool | None = None
    """Ground truth for the metrics; None: the control's outcome, or unknown."""
    recovered: float = 0.0
    typology: str | None = None
    gap: float = 0.0

    @classmethod
    def from_generated(cls, item: _Generated) -> Example:
        """From a generator item: its control, and its truth for the metrics."""
        truth = item.truth
        return cls(
            item.declaration,
            item.control,
            truth.typology is not None,
            float(truth.duty_gap_eur),
            truth.typology,
            float(truth.gap),
        )

    @property
    def label(self) -> bool | None:
        """What an inspection finds: the truth when known, else the control's outcome."""
        if self.fraud is not None:
            return self.fraud
        return None if self.control is None else self.control.is_fraud

    @property
    def is_import(self) -> bool:
        return self.declaration.direction == "import"


def duty(example: Example) -> float:
    """The duty at stake: what the truth or the control says was recovered, else the
    declaration's duty as the mapping gives it (customs value x duty rate)."""
    if example.recovered > 0:
        return example.recovered
    if example.control is not None and example.control.recovered_eur > 0:
        return example.control.recovered_eur
    decl = example.declaration
    return min(decl.customs_value_eur * decl.duty_rate_pct / 100.0, MAX_DUTY_EUR)
