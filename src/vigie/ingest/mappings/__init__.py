"""Column mappings: foreign formats (CSV or JSON rows) into Declarations and ControlResults.

A mapping is a TOML file. Each Declaration field names the ``column`` it comes from (or a
constant ``value``), an optional ``transform`` and its arguments; ``[declaration.attributes]``
keeps source-specific columns; an optional ``[control]`` table turns label columns into a
ControlResult. Mappings shipped with Vigie are found by name (``customs-kr``); any other
argument is read as a path.

>>> kr = load_mapping("customs-kr")
>>> row = {"Declaration ID": "97061800", "Date": "2020-01-01", "Office ID": "30",
...        "Process Type": "B", "Import Type": "11", "Import Use": "21", "Payment Type": "11",
...        "Mode of Transport": "10", "Declarant ID": "ZZR1LT6", "Importer ID": "QLRUBN9",
...        "Seller ID": "0VKY2BR", "Courier ID": "", "HS6 Code": "90121",
...        "Country of Departure": "BE", "Country of Origin": "BE", "Tax Rate": "0.0",
...        "Tax Type": "FEU1", "Country of Origin Indicator": "G", "Net Mass": "108.0",
...        "Item Price": "372254.4", "Fraud": "1", "Critical Fraud": "2"}
>>> declaration, control = kr.convert(row)
>>> declaration["commodity_code"], round(declaration["customs_value_eur"], 2)
('090121', 276.21)
>>> declaration["direction"]
'import'
>>> control["outcome"], control["controlled_at"]
('critical', '2020-01-08T00:00:00+00:00')
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from vigie.contracts.codes import normalise_commodity_code
from vigie.errors import ConfigurationError, DecodeError

Row = Mapping[str, str]
Transform = Callable[[str, Mapping[str, Any], Row], Any]


def _date(raw: str, spec: Mapping[str, Any], row: Row) -> str:
    moment = datetime.fromisoformat(raw.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC) + timedelta(days=float(spec.get("offset_days", 0)))
    return moment.isoformat()


def _float(raw: str, spec: Mapping[str, Any], row: Row) -> float:
    return float(raw) * float(spec.get("scale", 1.0))


def _commodity(raw: str, spec: Mapping[str, Any], row: Row) -> str:
    return normalise_commodity_code(raw)


def _outcome(raw: str, spec: Mapping[str, Any], row: Row) -> str:
    """Critical-fraud level 2 is critical; otherwise the fraud flag says infraction."""
    if raw.strip() == "2":
        return "critical"
    fraud_column = spec.get("fraud_column")
    flag = row.get(fraud_column, "0") if fraud_column else raw
    return "infraction" if flag.strip() not in ("", "0") else "compliant"


TRANSFORMS: dict[str, Transform] = {
    "date": _date,
    "float": _float,
    "commodity_code": _commodity,
    "outcome": _outcome,
}


@dataclass(frozen=True)
class ColumnMapping:
    """A loaded mapping: turns one foreign row into (declaration dict, control dict | None)."""

    name: str
    declaration: Mapping[str, Any]
    attributes: Mapping[str, str]
    control: Mapping[str, Any] | None

    def convert(self, row: Row) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Map a row; raise :class:`DecodeError` naming the column that failed."""
        declaration = self._fields(self.declaration, row)
        attributes = {
            key: row[column].strip()
            for key, column in self.attributes.items()
            if row.get(column, "").strip()
        }
        if attributes:
            declaration["attributes"] = attributes
        control = None
        if self.control is not None:
            control = self._fields(self.control, row)
            control["declaration_id"] = declaration.get("declaration_id")
        return declaration, control

    def _fields(self, specs: Mapping[str, Any], row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for field, spec in specs.items():
            if not isinstance(spec, Mapping):
                continue
            if "value" in spec:
                out[field] = spec["value"]
                continue
            column = spec["column"]
            raw = row.get(column)
            if raw is None or raw.strip() == "":
                if not spec.get("optional", False):
                    errors.append(_missing(field, column))
                continue
            transform: Transform = TRANSFORMS.get(str(spec.get("transform", "")), _identity)
            try:
                out[field] = transform(raw, spec, row)
            except (ValueError, TypeError, OverflowError) as exc:
                errors.append(_unreadable(field, column, raw, exc))
        if errors:
            raise DecodeError("mapping", errors)
        return out


def _identity(raw: str, spec: Mapping[str, Any], row: Row) -> str:
    return raw.strip()


def _missing(field: str, column: str) -> dict[str, Any]:
    return {"loc": [field], "msg": f"column {column!r} is missing or empty", "type": "missing"}


def _unreadable(field: str, column: str, raw: str, exc: Exception) -> dict[str, Any]:
    return {
        "loc": [field],
        "msg": f"column {column!r} value {raw[:40]!r} is unreadable: {exc}",
        "type": "value_error",
        "input": raw[:200],
    }


def load_mapping(name_or_path: str) -> ColumnMapping:
    """A shipped mapping by name, or a TOML mapping file by path.

    :class:`~vigie.errors.ConfigurationError` names what cannot work: a file that is not
    TOML (with its line), a field without a column or value, an unknown transform.

    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "m.toml"
    >>> _ = bad.write_text('[declaration]\\nlodged_at = {column = "Date", transform = "day"}')
    >>> load_mapping(str(bad))
    Traceback (most recent call last):
    ...
    vigie.errors.ConfigurationError: mapping ...m.toml: declaration field 'lodged_at': \
unknown transform 'day' (known: commodity_code, date, float, outcome)
    """
    shipped = resources.files(__package__).joinpath(f"{name_or_path}.toml")
    if shipped.is_file():
        text = shipped.read_text(encoding="utf-8")
    elif Path(name_or_path).is_file():
        text = Path(name_or_path).read_text(encoding="utf-8")
    else:
        raise ConfigurationError(
            f"no mapping {name_or_path!r}: shipped mappings are {', '.join(shipped_mappings())}, "
            "or give the path of a TOML mapping file"
        )
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"mapping {name_or_path}: not valid TOML: {exc}") from exc
    declaration = dict(spec.get("declaration", {}))
    attributes = declaration.pop("attributes", {})
    control = spec.get("control")
    _check_fields(name_or_path, "declaration", declaration)
    if control is not None:
        _check_fields(name_or_path, "control", control)
    return ColumnMapping(
        name=spec.get("name", name_or_path),
        declaration=declaration,
        attributes=attributes,
        control=control,
    )


def _check_fields(name: str, table: str, fields: Mapping[str, Any]) -> None:
    """Every field names a column or a value, and a known transform."""
    for field, entry in fields.items():
        if not isinstance(entry, Mapping):
            continue
        where = f"mapping {name}: {table} field {field!r}"
        if "column" not in entry and "value" not in entry:
            raise ConfigurationError(f"{where}: give a column (or a constant value)")
        transform = entry.get("transform", "")
        if transform not in ("", *TRANSFORMS):
            known = ", ".join(sorted(TRANSFORMS))
            raise ConfigurationError(f"{where}: unknown transform {transform!r} (known: {known})")


def shipped_mappings() -> list[str]:
    """Names of the mappings that ship with Vigie."""
    return sorted(
        p.name.removesuffix(".toml")
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".toml")
    )
