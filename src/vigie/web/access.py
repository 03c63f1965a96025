"""Who may read what: the operators in scope are decided here, on the server, and only here.

A :class:`Scope` is the list of operators a query may read. It is made by
:func:`scope_for` from the logged-in account and the operator the request names, never
from anything else the client sends: a company reads its own identifiers, customs staff
any operator that exists. A company naming another company's identifier, or one that
does not exist, gets the same :class:`NotFoundError`; so does customs staff naming an
operator with no declaration. Every scoped indicator binds the scope as the
``{scope:Array(String)}`` parameter of its SQL.

Examples
--------
>>> from vigie.web.accounts import Account
>>> acme = Account("acme", "company", ("FR1", "FR2"), "hash")
>>> scope_for(acme, "FR2", exists=lambda op: True).operators
('FR2',)
>>> scope_for(acme, "FR9", exists=lambda op: True)
Traceback (most recent call last):
...
vigie.web.access.NotFoundError: not found
>>> scope_for(acme, "fr2", exists=lambda op: True)
Traceback (most recent call last):
...
vigie.web.access.NotFoundError: not found
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vigie.web.accounts import Account

_MINTED = object()


class NotFoundError(Exception):
    """No such operator for this reader: the same answer whether it exists or not."""

    def __init__(self) -> None:
        super().__init__("not found")


class ForbiddenError(Exception):
    """The page or API is for customs staff only."""

    def __init__(self) -> None:
        super().__init__("customs staff only")


@dataclass(frozen=True)
class Scope:
    """The operators one request may read; made by :func:`scope_for` only."""

    operators: tuple[str, ...]
    _mint: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._mint is not _MINTED or not self.operators:
            raise TypeError("a Scope is made by vigie.web.access.scope_for only")


def scope_for(account: Account, operator: str, exists: Callable[[str], bool]) -> Scope:
    """The scope of a request by ``account`` for ``operator``, or :class:`NotFoundError`.

    Identifiers compare exactly (no case folding, no normalisation): ``fr2`` is not
    ``FR2``. ``exists`` tells whether an operator has declarations (customs staff only).
    """
    if account.is_customs:
        if not exists(operator):
            raise NotFoundError()
    elif operator not in account.operators:
        raise NotFoundError()
    return Scope((operator,), _MINTED)


def require_customs(account: Account) -> None:
    """Refuse a company account a customs-staff page (Pilote, operator search)."""
    if not account.is_customs:
        raise ForbiddenError()
