"""The batch LightGBM reference on customs-kr, under the metric of ``vigie evaluate``.

LightGBM with default parameters, categorical columns label-encoded (codes learnt on
train.csv, unseen values -1), trained once on train.csv and scored on valid.csv; the
figures use :func:`vigie.evaluation.ranking_metrics`, the same top-k
definition as the prequential evaluation.

    .venv/bin/python bench/lightgbm_reference.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightgbm as lgb
import numpy as np

from vigie.evaluation import ranking_metrics

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "customs-kr"
LABELS = ("Fraud", "Critical Fraud", "Declaration ID", "Date")


def _read(name: str) -> list[dict[str, str]]:
    path = DATA / name
    if not path.is_file():
        raise SystemExit(f"customs-kr data not found at {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _matrix(rows: list[dict[str, str]], codes: dict[str, dict[str, int]]) -> np.ndarray:
    columns = [c for c in rows[0] if c not in LABELS]
    out = np.empty((len(rows), len(columns)))
    for j, column in enumerate(columns):
        if column in codes:
            table = codes[column]
            out[:, j] = [table.get(r[column], -1) for r in rows]
        else:
            out[:, j] = [float(r[column] or "nan") for r in rows]
    return out


def main() -> None:
    train, valid = _read("train.csv"), _read("valid.csv")
    numeric = {"Tax Rate", "Net Mass", "Item Price"}
    categorical = [c for c in train[0] if c not in LABELS and c not in numeric]
    codes = {c: {v: i for i, v in enumerate(sorted({r[c] for r in train}))} for c in categorical}
    x_train, x_valid = _matrix(train, codes), _matrix(valid, codes)
    y_train = np.array([float(r["Fraud"]) for r in train])
    y_valid = np.array([float(r["Fraud"]) for r in valid])
    model = lgb.LGBMClassifier(verbose=-1)
    model.fit(x_train, y_train)
    scores = np.asarray(model.predict_proba(x_valid))[:, 1]
    print("LightGBM batch, train.csv -> valid.csv:", ranking_metrics(scores, y_valid, 0 * scores))


if __name__ == "__main__":
    main()
