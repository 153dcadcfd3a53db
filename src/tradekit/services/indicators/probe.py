"""The look-ahead probe: an indicator's value at a bar must not change when later bars arrive.

Used by ``register_indicator`` on user-defined indicators and by the tests on
the built-in ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from tradekit.errors import ConfigError
from tradekit.services.indicators.backend import FloatArray

if TYPE_CHECKING:
    from tradekit.services.indicators.catalog import IndicatorSpec, Params, ParamValue


def random_walk(bars: int, seed: int = 0) -> dict[str, FloatArray]:
    """Seeded synthetic OHLCV (a geometric random walk) for probing indicators."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = 1.0 + rng.uniform(0.0, 0.01, (2, bars))
    return {
        "open": open_,
        "high": np.maximum(open_, close) * spread[0],
        "low": np.minimum(open_, close) / spread[1],
        "close": close,
        "volume": rng.uniform(10.0, 1000.0, bars),
    }


PROBE_BARS = 400
PROBE_CUTS = 12


def probe_causality(spec: IndicatorSpec, params: Params | None = None) -> None:
    """Refuse ``spec`` when its value at a bar changes once later bars are added.

    On a seeded random walk, the whole-series value at several bars must equal
    the value computed on the data cut at that bar (to 1e-9). ``params`` override
    the defaults. Raises
    ``ConfigError`` on look-ahead, wrong output names or lengths, or a failing
    compute.
    """
    chosen: dict[str, ParamValue] = {}
    for param in spec.params:
        chosen[param.name] = chosen.get(param.default_from or "", param.default)
    chosen.update(params or {})
    data = random_walk(PROBE_BARS, seed=7)
    where = f"indicator '{spec.name}'"
    full = _probe_compute(spec, data, chosen, PROBE_BARS, where)
    start = min(spec.lookback(chosen), PROBE_BARS - 1)
    for cut in np.unique(np.linspace(start, PROBE_BARS - 1, PROBE_CUTS).astype(int)):
        part = _probe_compute(
            spec, {k: v[: cut + 1] for k, v in data.items()}, chosen, cut + 1, where
        )
        for name in spec.output_names:
            whole, cut_value = full[name][cut], part[name][cut]
            same = (np.isnan(whole) and np.isnan(cut_value)) or math.isclose(
                whole, cut_value, rel_tol=1e-9, abs_tol=1e-9
            )
            if not same:
                raise ConfigError(
                    f"{where} looks ahead: output '{name}' at bar {cut} is {whole!r} on the "
                    f"whole series but {cut_value!r} on the bars up to {cut}; an indicator may "
                    "only use the bars up to the one it is computed for"
                )


def _probe_compute(
    spec: IndicatorSpec, data: Mapping[str, FloatArray], params: Params, size: int, where: str
) -> dict[str, FloatArray]:
    try:
        result = spec.compute({name: data[name] for name in spec.inputs}, params)
    except Exception as exc:
        raise ConfigError(f"{where}: compute failed on probe data: {exc!r}") from exc
    outputs: dict[str, FloatArray] = {}
    for name in spec.output_names:
        if name not in result:
            raise ConfigError(
                f"{where}: compute returned {sorted(result)}, expected outputs "
                f"{list(spec.output_names)}"
            )
        column = np.asarray(result[name], dtype=np.float64)
        if column.shape != (size,):
            raise ConfigError(
                f"{where}: output '{name}' has shape {column.shape}, expected ({size},)"
            )
        outputs[name] = column
    return outputs


__all__ = ["PROBE_BARS", "PROBE_CUTS", "probe_causality", "random_walk"]
