"""``FilterOrchestrator``: the conditions of ``filters`` that can block a new entry.

Filters never block exits. Each check returns the reason it blocks, so the
entry orchestrator can report why a signal was not taken.
"""

from __future__ import annotations

import math

from tradekit.config.strategy import FiltersConfig, IndicatorConfig, StrategyConfig
from tradekit.domain import Side
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.protocols import BarView
from tradekit.timeframes import TIMEFRAME_SECONDS

FILTER_ATR_ALIAS = "filter_atr"
"""Indicator key the volatility filter reads its ATR from."""

FILTER_TREND_ALIAS = "filter_trend"
"""Indicator key the trend filter reads its moving average from."""

RESERVED_ALIASES: tuple[str, ...] = (FILTER_ATR_ALIAS, FILTER_TREND_ALIAS)
"""Indicator keys the filters own; a strategy's own indicators must not use them."""

WARMING_UP = "warming up"
"""The reason given while an indicator a filter needs has no value yet."""

_MINUTES_PER_DAY = 24 * 60
_TIMEFRAME_MINUTES = {name: seconds // 60 for name, seconds in TIMEFRAME_SECONDS.items()}


def _clock_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _num(value: float) -> str:
    # Large volumes read better with separators than in scientific notation.
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


class FilterOrchestrator:
    """Checks one strategy's entry filters on a candle; one per strategy, discarded on unload.

    Checks run cheapest first: session, volume, volatility, trend. The session is
    judged at the candle's close time (when the entry decision is made and its
    order sent): start inclusive, end exclusive, wrapping midnight when start >
    end; start == end means the whole day. ATR and the trend moving average are
    read through ``view.value`` under ``FILTER_ATR_ALIAS`` and
    ``FILTER_TREND_ALIAS``; ``required_indicators`` tells the container what the
    indicator registry must hold for them.
    """

    __slots__ = (
        "_max_atr_pct",
        "_min_atr_pct",
        "_min_volume",
        "_required",
        "_session",
        "_session_reason",
        "_session_wraps",
        "_trend_label",
        "_uses_atr",
        "_uses_trend",
    )

    def __init__(self, config: FiltersConfig) -> None:
        required: list[IndicatorConfig] = []
        self._session: tuple[int, int] | None = None
        self._session_wraps = False
        self._session_reason = ""
        session = config.session
        if session is not None and session.start != session.end:
            start, end = _clock_minutes(session.start), _clock_minutes(session.end)
            self._session = (start, end)
            self._session_wraps = start > end
            self._session_reason = f"outside session {session.start}-{session.end} UTC"
        self._min_volume = config.min_volume if config.min_volume is not None else -math.inf
        volatility = config.volatility
        self._uses_atr = volatility is not None
        self._min_atr_pct = -math.inf
        self._max_atr_pct = math.inf
        if volatility is not None:
            if volatility.min_atr_pct is not None:
                self._min_atr_pct = volatility.min_atr_pct
            if volatility.max_atr_pct is not None:
                self._max_atr_pct = volatility.max_atr_pct
            required.append(
                IndicatorConfig(
                    name="atr", params={"length": volatility.atr_length}, alias=FILTER_ATR_ALIAS
                )
            )
        trend = config.trend
        self._uses_trend = trend is not None
        self._trend_label = ""
        if trend is not None:
            self._trend_label = f"{trend.ma}({trend.length})"
            required.append(
                IndicatorConfig(
                    name=trend.ma, params={"length": trend.length}, alias=FILTER_TREND_ALIAS
                )
            )
        self._required = tuple(required)

    def required_indicators(self) -> list[IndicatorConfig]:
        """The indicators the registry must hold for these filters, under the reserved keys."""
        return list(self._required)

    def allows_entry(self, view: BarView, side: Side) -> str | None:
        """``None`` when an entry on ``side`` may go ahead, else the reason it is blocked."""
        candle = view.candle
        if self._session is not None:
            ts = candle.ts
            minute = (
                ts.hour * 60 + ts.minute + _TIMEFRAME_MINUTES[candle.timeframe]
            ) % _MINUTES_PER_DAY
            start, end = self._session
            inside = (
                (minute >= start or minute < end) if self._session_wraps else start <= minute < end
            )
            if not inside:
                return self._session_reason
        if candle.volume < self._min_volume:
            return f"volume {_num(candle.volume)} below min {_num(self._min_volume)}"
        if self._uses_atr:
            atr = view.value(FILTER_ATR_ALIAS)
            if atr is None or math.isnan(atr):
                return WARMING_UP
            atr_pct = atr / candle.close * 100.0
            if atr_pct < self._min_atr_pct:
                return f"ATR {_num(atr_pct)}% below min {_num(self._min_atr_pct)}%"
            if atr_pct > self._max_atr_pct:
                return f"ATR {_num(atr_pct)}% above max {_num(self._max_atr_pct)}%"
        if self._uses_trend:
            average = view.value(FILTER_TREND_ALIAS)
            if average is None or math.isnan(average):
                return WARMING_UP
            close = candle.close
            if side is Side.LONG and not close > average:
                where = "below" if close < average else "at"
                return f"close {where} {self._trend_label}"
            if side is Side.SHORT and not close < average:
                where = "above" if close > average else "at"
                return f"close {where} {self._trend_label}"
        return None


def registry_indicators(
    config: StrategyConfig, filters: FilterOrchestrator
) -> list[IndicatorConfig]:
    """The indicators a strategy's registry holds: its own, then those its filters require.

    Raises ``ConfigError`` when one of its own takes a key reserved for the filters.
    """
    reserved = [
        ConfigProblem(
            f"alias '{indicator.key}' is reserved for filters; choose another alias",
            source=f"strategy '{config.strategy_id}'",
            path=f"indicators[{index}].alias",
        )
        for index, indicator in enumerate(config.indicators)
        if indicator.key in RESERVED_ALIASES
    ]
    if reserved:
        raise ConfigError(reserved)
    return [*config.indicators, *filters.required_indicators()]


__all__ = [
    "FILTER_ATR_ALIAS",
    "FILTER_TREND_ALIAS",
    "RESERVED_ALIASES",
    "WARMING_UP",
    "FilterOrchestrator",
    "registry_indicators",
]
