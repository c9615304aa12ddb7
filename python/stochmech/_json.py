"""Turning results into strict JSON values (numpy scalars and arrays, nested containers)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars and arrays as Python numbers and lists, recursively through
    dicts, lists and tuples; non-finite floats become ``None`` (strict JSON has no NaN).

    Examples
    --------
    >>> jsonable({"a": np.float64(1.5), "b": (np.arange(2), float("nan"))})
    {'a': 1.5, 'b': [[0, 1], None]}
    """
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def strict_json(x: Any) -> str:
    """``x`` as indented strict JSON (what ``--json`` prints): numpy values as numbers and
    lists, non-finite floats as ``null``.

    Examples
    --------
    >>> print(strict_json({"gain": float("inf"), "n": np.int64(2)}))
    {
      "gain": null,
      "n": 2
    }
    """
    return json.dumps(jsonable(x), indent=2, allow_nan=False)
