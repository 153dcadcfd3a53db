"""``MTFSnapshotGate``: a higher-timeframe condition, built from the strategy's own candle stream.

The gate resamples base candles into higher-timeframe (HTF) candles per symbol
and keeps an incremental moving average of their closes. It only ever looks at
completed HTF candles, so a backtest cannot peek at a candle still forming.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from tradekit.config.strategy import MTFConfig
from tradekit.domain import Candle, Side
from tradekit.errors import ConfigError, DataError
from tradekit.timeframes import (
    TIMEFRAME_SECONDS,
    floor_timestamp,
    is_higher_timeframe,
    timeframe_delta,
    unknown_timeframe_message,
)

WARMING_UP = "warming up"
"""The reason given until enough completed HTF candles exist for the rule."""

_NEVER = datetime.min.replace(tzinfo=UTC)
_FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MTFSnapshot:
    """The HTF state of one symbol as of its last completed HTF candle, for reports.

    ``ma`` is ``None`` until ``length`` HTF candles completed; ``previous_ma`` is
    the average one HTF candle earlier.
    """

    candle: Candle
    ma: float | None
    previous_ma: float | None


class _SymbolState:
    """Resampling and moving-average state of one symbol."""

    __slots__ = (
        "bucket_end",
        "close",
        "completed_ts",
        "count",
        "ema_seed",
        "forming",
        "forming_ts",
        "high",
        "last_base_open",
        "last_close",
        "last_high",
        "last_low",
        "last_open",
        "last_ts",
        "last_volume",
        "long_reason",
        "low",
        "ma",
        "open",
        "previous_ma",
        "short_reason",
        "skip_forming",
        "volume",
        "window",
    )

    def __init__(self, length: int) -> None:
        # Sentinels rather than None keep the per-candle path to plain comparisons.
        self.last_ts = _NEVER
        self.forming = False
        self.forming_ts = _NEVER
        self.bucket_end = _NEVER
        self.last_base_open = _FOREVER
        self.skip_forming = False
        self.open = self.high = self.low = self.close = self.volume = 0.0
        self.completed_ts: datetime | None = None
        self.last_open = self.last_high = self.last_low = self.last_close = self.last_volume = 0.0
        self.window: deque[float] = deque(maxlen=length)
        self.count = 0
        self.ema_seed = 0.0
        self.ma: float | None = None
        self.previous_ma: float | None = None
        self.long_reason: str | None = WARMING_UP
        self.short_reason: str | None = WARMING_UP


class MTFSnapshotGate:
    """The ``mtf`` entry condition of one strategy; one per strategy, discarded on unload.

    Feed every base candle to ``update`` before asking ``allows_entry`` on it. An
    HTF candle is complete when the base candle whose close time is the HTF
    boundary arrives (it is then usable on that same base candle); until then
    it is invisible. A gap in the base stream completes the unfinished HTF
    candle from what arrived once a later HTF period begins. While no HTF candle
    has completed yet, one whose start was missed (the stream began inside it)
    is dropped rather than reported with a wrong open.

    Rules: ``trend_agrees`` (longs need the HTF close above the average, shorts
    below), ``close_above`` and ``close_below`` (for either side), ``rising`` and
    ``falling`` (the average against its value one HTF candle earlier). The EMA
    is seeded with the SMA of its first ``length`` closes.
    """

    __slots__ = (
        "_alpha",
        "_base_delta",
        "_base_timeframe",
        "_config",
        "_htf",
        "_htf_delta",
        "_is_ema",
        "_length",
        "_reasons",
        "_states",
    )

    def __init__(self, config: MTFConfig | None, base_timeframe: str) -> None:
        if base_timeframe not in TIMEFRAME_SECONDS:
            raise ConfigError(f"mtf gate: {unknown_timeframe_message(base_timeframe)}")
        self._config = config
        self._base_timeframe = base_timeframe
        self._base_delta = timeframe_delta(base_timeframe)
        self._states: dict[str, _SymbolState] = {}
        self._htf = config.timeframe if config is not None else base_timeframe
        self._htf_delta = timeframe_delta(self._htf)
        self._length = config.length if config is not None else 1
        self._is_ema = config is not None and config.ma == "ema"
        self._alpha = 2.0 / (self._length + 1)
        self._reasons: dict[str, str] = {}
        if config is None:
            return
        if not is_higher_timeframe(config.timeframe, base_timeframe):
            raise ConfigError(
                f"mtf.timeframe {config.timeframe!r} must be higher than the strategy timeframe "
                f"{base_timeframe!r} and a whole multiple of it"
            )
        label = f"{config.ma}({config.length})"
        close = f"{config.timeframe} close"
        self._reasons = {
            "below": f"{close} below {label}",
            "at": f"{close} at {label}",
            "above": f"{close} above {label}",
            "not_rising": f"{config.timeframe} {label} not rising",
            "not_falling": f"{config.timeframe} {label} not falling",
        }

    @property
    def needs_every_bar(self) -> bool:
        """True when configured: it builds its higher-timeframe candles from every base candle."""
        return self._config is not None

    def update(self, candle: Candle) -> None:
        """Add one closed base candle; it completes the HTF candle whose boundary it closes at."""
        if self._config is None:
            return
        state = self._states.get(candle.symbol)
        if state is None:
            state = self._states[candle.symbol] = _SymbolState(self._length)
        ts = candle.ts
        last = state.last_ts
        if ts <= last:
            if ts == last:
                return  # the same candle again: already counted
            raise DataError(
                f"mtf gate: candle {candle.symbol} {ts.isoformat()} is older than the last one "
                f"({last.isoformat()}); candles must arrive in time order"
            )
        if candle.timeframe != self._base_timeframe:
            raise DataError(
                f"mtf gate: expected {self._base_timeframe} candles, got a {candle.timeframe} "
                f"candle for {candle.symbol}"
            )
        state.last_ts = ts
        if ts >= state.bucket_end:
            self._start_bucket(state, candle)
        else:
            if candle.high > state.high:
                state.high = candle.high
            if candle.low < state.low:
                state.low = candle.low
            state.close = candle.close
            state.volume += candle.volume
        if ts >= state.last_base_open:
            self._complete(state)

    def allows_entry(self, symbol: str, side: Side) -> str | None:
        """``None`` when the HTF rule lets an entry on ``side`` through, else why it blocks."""
        if self._config is None:
            return None
        state = self._states.get(symbol)
        if state is None:
            return WARMING_UP
        return state.long_reason if side is Side.LONG else state.short_reason

    def snapshot(self, symbol: str) -> MTFSnapshot | None:
        """The last completed HTF candle of ``symbol`` and its averages; ``None`` before one."""
        state = self._states.get(symbol)
        if state is None or state.completed_ts is None:
            return None
        candle = Candle(
            symbol,
            self._htf,
            state.completed_ts,
            state.last_open,
            state.last_high,
            state.last_low,
            state.last_close,
            state.last_volume,
        )
        return MTFSnapshot(candle, state.ma, state.previous_ma)

    def _start_bucket(self, state: _SymbolState, candle: Candle) -> None:
        if state.forming:
            self._complete(state)  # a gap: the last base candle of that period never came
        ts = candle.ts
        # A contiguous stream starts the next period where the last one ended; flooring
        # the timestamp is only needed at the start and after a gap, as it costs ~2 us.
        start = state.bucket_end if ts == state.bucket_end else floor_timestamp(ts, self._htf)
        end = start + self._htf_delta
        state.forming = True
        state.forming_ts = start
        state.bucket_end = end
        state.last_base_open = end - self._base_delta
        state.skip_forming = ts != start and state.completed_ts is None
        state.open = candle.open
        state.high = candle.high
        state.low = candle.low
        state.close = candle.close
        state.volume = candle.volume

    def _complete(self, state: _SymbolState) -> None:
        state.forming = False
        state.last_base_open = _FOREVER
        if state.skip_forming:
            return
        state.completed_ts = state.forming_ts
        state.last_open, state.last_high, state.last_low = state.open, state.high, state.low
        state.last_close, state.last_volume = state.close, state.volume
        self._update_average(state, state.close)
        self._decide(state)

    def _update_average(self, state: _SymbolState, close: float) -> None:
        state.previous_ma = state.ma
        length = self._length
        if self._is_ema:
            state.count += 1
            if state.count < length:
                state.ema_seed += close
            elif state.count == length:
                state.ma = (state.ema_seed + close) / length
            else:
                assert state.ma is not None
                state.ma += self._alpha * (close - state.ma)
            return
        window = state.window
        window.append(close)
        if len(window) == length:
            state.ma = math.fsum(window) / length

    def _decide(self, state: _SymbolState) -> None:
        assert self._config is not None
        rule = self._config.rule
        ma = state.ma
        previous = state.previous_ma
        if ma is None or (previous is None and rule in ("rising", "falling")):
            state.long_reason = state.short_reason = WARMING_UP
            return
        reasons = self._reasons
        close = state.last_close
        below_or_at = reasons["below"] if close < ma else reasons["at"]
        above_or_at = reasons["above"] if close > ma else reasons["at"]
        verdict: str | None
        if rule == "trend_agrees":
            state.long_reason = None if close > ma else below_or_at
            state.short_reason = None if close < ma else above_or_at
            return
        if rule == "close_above":
            verdict = None if close > ma else below_or_at
        elif rule == "close_below":
            verdict = None if close < ma else above_or_at
        elif rule == "rising":
            verdict = None if previous is not None and ma > previous else reasons["not_rising"]
        else:
            verdict = None if previous is not None and ma < previous else reasons["not_falling"]
        state.long_reason = state.short_reason = verdict


__all__ = ["WARMING_UP", "MTFSnapshot", "MTFSnapshotGate"]
