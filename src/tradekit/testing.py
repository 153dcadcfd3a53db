"""Fakes, builders and pytest fixtures for testing strategies without booting anything else.

Importing this module is cheap: pandas and the containers load only when a
builder or fixture that needs them runs. pytest loads it as the ``tradekit``
plugin, which provides the ``tradekit_runtime``, ``tradekit_shared``,
``tradekit_factory``, ``tradekit_engine`` and ``tradekit_events`` fixtures
(disable with ``-p no:tradekit``).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from tradekit.config.loading import deep_merge
from tradekit.config.problems import problems_from_validation
from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.domain import Candle, Fill, Order
from tradekit.errors import ConfigError, ConfigProblem, ExchangeError
from tradekit.events import Event
from tradekit.protocols import EventBus, Subscription
from tradekit.services.exchange.paper import check_market_order
from tradekit.services.positions.state import decode_record, encode_record
from tradekit.timeframes import timeframe_delta

if TYPE_CHECKING:
    import pandas as pd

    from tradekit.containers.factory import TradingOrchestratorFactory
    from tradekit.containers.shared import SharedContainer
    from tradekit.runtime import Runtime
    from tradekit.runtime.engine import Engine
    from tradekit.services.market.candles import CandleStore

EventT = TypeVar("EventT", bound=Event)

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
"""Where generated candles start: a Monday at 00:00 UTC, aligned to every timeframe."""

_BPS = 10_000.0


# -- exchange -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _HeldOrder:
    order: Order
    decided_at: datetime


class FakeExchange:
    """An ``Exchange`` that records every order and fills it at once, or holds it; one per test.

    Prices: ``fill_price`` when set, else the ``trigger_price`` of a stop or
    target, else the close of the candle the order was decided on. With
    ``hold=True`` an order without a trigger price waits until ``fill_pending``
    is called with a later candle of its symbol (the strategy does that on its
    next candle) and fills at that candle's open (or ``fill_price``). The fee is
    ``fee_bps`` of the filled notional. ``fail_next_submit`` makes the next
    submission(s) raise ``ExchangeError``.

    ``orders`` lists every submitted order, refused ones included; ``rejected``
    the refused ones, ``fills`` every fill, ``cancelled`` the pending orders
    dropped by ``cancel_pending`` and ``cancel_orders``. Safe to use from several threads.
    """

    def __init__(
        self, *, fill_price: float | None = None, fee_bps: float = 0.0, hold: bool = False
    ) -> None:
        if fill_price is not None and not fill_price > 0:
            raise ValueError(f"fill_price must be > 0, got {fill_price!r}")
        if not 0 <= fee_bps <= 1000:
            raise ValueError(f"fee_bps must be within 0..1000, got {fee_bps!r}")
        self.fill_price = fill_price
        self.fee_bps = fee_bps
        self.hold = hold
        self.orders: list[Order] = []
        self.rejected: list[Order] = []
        self.fills: list[Fill] = []
        self.cancelled: list[Order] = []
        self._held: list[_HeldOrder] = []
        self._failures: list[str] = []
        self._lock = threading.Lock()

    def fail_next_submit(
        self, message: str = "exchange unavailable (FakeExchange)", times: int = 1
    ) -> None:
        """Make the next ``times`` calls to ``submit`` raise ``ExchangeError(message)``."""
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times!r}")
        with self._lock:
            self._failures.extend([message] * times)

    def submit(
        self, order: Order, candle: Candle, trigger_price: float | None = None
    ) -> list[Fill]:
        """Record ``order``; fill it now, hold it, or raise when told to fail."""
        with self._lock:
            self.orders.append(order)
            if self._failures:
                self.rejected.append(order)
                raise ExchangeError(self._failures.pop(0))
            check_market_order(order, candle, "fake exchange")
            if self.hold and trigger_price is None:
                self._held.append(_HeldOrder(order, candle.close_ts))
                return []
            price = trigger_price if trigger_price is not None else candle.close
            return [self._fill(order, price, candle.close_ts)]

    def fill_pending(self, strategy_id: str, candle: Candle) -> list[Fill]:
        """Fill ``strategy_id``'s held orders in ``candle.symbol`` decided before it opened."""
        with self._lock:
            due = [
                held
                for held in self._held
                if held.order.strategy_id == strategy_id
                and held.order.symbol == candle.symbol
                and held.decided_at <= candle.ts
            ]
            if not due:
                return []
            self._held = [held for held in self._held if held not in due]
            return [self._fill(held.order, candle.open, candle.ts) for held in due]

    def cancel_pending(self, strategy_id: str) -> int:
        """Drop every held order of ``strategy_id``; returns how many were dropped."""
        with self._lock:
            dropped = [held.order for held in self._held if held.order.strategy_id == strategy_id]
            self._held = [held for held in self._held if held.order.strategy_id != strategy_id]
            self.cancelled.extend(dropped)
            return len(dropped)

    def cancel_orders(self, strategy_id: str, order_ids: Collection[str]) -> list[Order]:
        """Drop the held orders of ``strategy_id`` named in ``order_ids``; returns them."""
        wanted = set(order_ids)
        with self._lock:
            dropped = [
                held.order
                for held in self._held
                if held.order.strategy_id == strategy_id and held.order.order_id in wanted
            ]
            self._held = [held for held in self._held if held.order not in dropped]
            self.cancelled.extend(dropped)
            return dropped

    def export_pending(self, strategy_id: str) -> list[dict[str, Any]]:
        """``strategy_id``'s held orders as JSON-ready dicts, for its snapshot."""
        with self._lock:
            return [
                {**encode_record(held.order), "decided_at": held.decided_at.isoformat()}
                for held in self._held
                if held.order.strategy_id == strategy_id
            ]

    def import_pending(self, strategy_id: str, items: list[dict[str, Any]]) -> None:
        """Hold again the orders of ``export_pending`` (a resumed strategy's)."""
        restored = [
            _HeldOrder(decode_record(Order, item), datetime.fromisoformat(item["decided_at"]))
            for item in items
        ]
        with self._lock:
            self._held.extend(restored)

    def pending_orders(self, strategy_id: str | None = None) -> tuple[Order, ...]:
        """Held orders (of ``strategy_id``, or everyone's), oldest first."""
        with self._lock:
            return tuple(
                held.order
                for held in self._held
                if strategy_id is None or held.order.strategy_id == strategy_id
            )

    def orders_for(self, strategy_id: str) -> list[Order]:
        """Every order ``strategy_id`` submitted, refused ones included."""
        with self._lock:
            return [order for order in self.orders if order.strategy_id == strategy_id]

    def _fill(self, order: Order, reference_price: float, ts: datetime) -> Fill:
        price = self.fill_price if self.fill_price is not None else reference_price
        fill = Fill(
            order_id=order.order_id,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            price=price,
            fee=order.quantity * price * self.fee_bps / _BPS,
            ts=ts,
        )
        self.fills.append(fill)
        return fill

    def __repr__(self) -> str:
        return (
            f"<FakeExchange orders={len(self.orders)} fills={len(self.fills)} "
            f"held={len(self._held)} hold={self.hold}>"
        )


# -- candles --------------------------------------------------------------------------------


def _close_ts(candle: Candle) -> datetime:
    return candle.close_ts


class FakeCandleSource:
    """A fixed set of closed candles, replayed in close-time order; one per test.

    Candles closing at the same moment keep the order they were given in.
    """

    def __init__(self, candles: Iterable[Candle]) -> None:
        self._candles: tuple[Candle, ...] = tuple(sorted(candles, key=_close_ts))
        self._by_key: dict[tuple[str, str], list[Candle]] = {}
        for candle in self._candles:
            self._by_key.setdefault((candle.symbol, candle.timeframe), []).append(candle)

    @classmethod
    def generated(
        cls,
        symbols: str | Sequence[str],
        timeframe: str | Sequence[str],
        bars: int,
        seed: int = 7,
        *,
        start: datetime = DEFAULT_START,
    ) -> FakeCandleSource:
        """``bars`` seeded synthetic candles per symbol and timeframe (see ``tradekit.data``)."""
        from tradekit.data.synthetic import synthetic_candles

        symbol_list = [symbols] if isinstance(symbols, str) else list(symbols)
        timeframes = [timeframe] if isinstance(timeframe, str) else list(timeframe)
        return cls(
            candle
            for frame_timeframe in timeframes
            for symbol in symbol_list
            for candle in synthetic_candles(symbol, frame_timeframe, bars, seed=seed, start=start)
        )

    @classmethod
    def from_closes(
        cls,
        closes: Sequence[float],
        *,
        symbol: str = "BTC/USDT",
        timeframe: str = "1h",
        start: datetime = DEFAULT_START,
        wick_pct: float = 0.1,
        volume: float = 1_000.0,
    ) -> FakeCandleSource:
        """Consecutive candles with these closes; each opens at the previous close.

        High and low sit ``wick_pct`` percent beyond the body, so a stop or target
        inside that range is touched.
        """
        step = timeframe_delta(timeframe)
        candles = []
        previous = closes[0] if closes else 0.0
        for index, close in enumerate(closes):
            top, bottom = max(previous, close), min(previous, close)
            candles.append(
                Candle(
                    symbol,
                    timeframe,
                    start + index * step,
                    previous,
                    top * (1 + wick_pct / 100),
                    bottom * (1 - wick_pct / 100),
                    close,
                    volume,
                )
            )
            previous = close
        return cls(candles)

    def stream(self) -> Iterator[Candle]:
        """Every candle, in close-time order (what ``Engine.on_candle`` expects)."""
        return iter(self._candles)

    def __iter__(self) -> Iterator[Candle]:
        return self.stream()

    def __len__(self) -> int:
        return len(self._candles)

    def keys(self) -> list[tuple[str, str]]:
        """The (symbol, timeframe) series present, in order of first close."""
        return list(self._by_key)

    def candles(self, symbol: str, timeframe: str) -> list[Candle]:
        """The candles of one series, oldest first."""
        return list(self._by_key.get((symbol, timeframe), ()))

    def subset(
        self, symbols: Iterable[str] | None = None, timeframes: Iterable[str] | None = None
    ) -> FakeCandleSource:
        """Only the candles of ``symbols`` and ``timeframes`` (``None`` keeps all)."""
        wanted_symbols = None if symbols is None else frozenset(symbols)
        wanted_timeframes = None if timeframes is None else frozenset(timeframes)
        return FakeCandleSource(
            candle
            for candle in self._candles
            if (wanted_symbols is None or candle.symbol in wanted_symbols)
            and (wanted_timeframes is None or candle.timeframe in wanted_timeframes)
        )

    def frames(self) -> dict[tuple[str, str], pd.DataFrame]:
        """One OHLCV frame per (symbol, timeframe), indexed by UTC open time."""
        import pandas as pd

        frames: dict[tuple[str, str], pd.DataFrame] = {}
        for key, candles in self._by_key.items():
            index = pd.DatetimeIndex([candle.ts for candle in candles], name="ts")
            frames[key] = pd.DataFrame(
                {
                    "open": [candle.open for candle in candles],
                    "high": [candle.high for candle in candles],
                    "low": [candle.low for candle in candles],
                    "close": [candle.close for candle in candles],
                    "volume": [candle.volume for candle in candles],
                },
                index=index,
            )
        return frames

    def preload(self, store: CandleStore) -> list[tuple[Candle, int]]:
        """Bulk-load every series into ``store``; return ``(candle, bar)`` in close-time order.

        Feed the pairs to ``Engine.on_bar``: indicators are then computed once per
        series instead of once per candle. ``DataError`` when ``store`` already
        holds one of the series.
        """
        from tradekit.services.market.candles import CandleSeries

        bars: dict[Candle, int] = {}
        for (symbol, timeframe), frame in self.frames().items():
            series = store.add(CandleSeries.from_frame(symbol, timeframe, frame))
            first = series.first_kept_bar
            for offset, candle in enumerate(self._by_key[(symbol, timeframe)]):
                bars[candle] = first + offset
        return [(candle, bars[candle]) for candle in self._candles]

    def __repr__(self) -> str:
        return f"<FakeCandleSource candles={len(self._candles)} series={len(self._by_key)}>"


# -- events ---------------------------------------------------------------------------------


class EventRecorder:
    """Keeps every event a bus delivers to it, optionally filtered; lives until ``close``.

    As a context manager it unsubscribes on exit. A recorder filtered on one
    strategy is also removed when that strategy is unloaded (the factory drops a
    strategy's subscriptions), so it does not see ``StrategyUnloaded``: record
    unfiltered and use ``for_strategy`` to see that.
    """

    def __init__(
        self,
        bus: EventBus,
        event_types: type[Event] | tuple[type[Event], ...] | None = None,
        strategy_id: str | None = None,
    ) -> None:
        self._events: list[Event] = []
        self._subscription: Subscription = bus.subscribe(
            self._events.append, event_types, strategy_id
        )

    @property
    def events(self) -> list[Event]:
        """The events recorded so far, in delivery order (a copy)."""
        return list(self._events)

    @property
    def active(self) -> bool:
        """True while the recorder is still subscribed."""
        return self._subscription.active

    def of_type(self, event_type: type[EventT]) -> list[EventT]:
        """The recorded events of ``event_type`` (subclasses included)."""
        return [event for event in self._events if isinstance(event, event_type)]

    def for_strategy(self, strategy_id: str) -> list[Event]:
        """The recorded events stamped with ``strategy_id``."""
        return [event for event in self._events if event.strategy_id == strategy_id]

    def types(self, strategy_id: str | None = None) -> list[str]:
        """The class names of the recorded events (of ``strategy_id``), in order."""
        return [
            event.event_type
            for event in self._events
            if strategy_id is None or event.strategy_id == strategy_id
        ]

    def clear(self) -> None:
        """Forget what was recorded; keep recording."""
        self._events.clear()

    def close(self) -> None:
        """Stop recording; calling it again does nothing."""
        self._subscription.unsubscribe()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EventRecorder events={len(self._events)} active={self.active}>"


# -- configuration --------------------------------------------------------------------------


class _DictOnlySettings(TradekitSettings):
    """Settings validated from the given values alone: no ``.env``, no environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _require_mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(
            [ConfigProblem(f"expected a dict, got a {type(data).__name__}", source=what)]
        )
    return cast(Mapping[str, Any], data)


def settings_from_dict(data: Mapping[str, Any]) -> TradekitSettings:
    """``TradekitSettings`` from ``data`` over the defaults; files and ``TRADEKIT_*`` are ignored.

    ``ConfigError`` lists every problem, as ``load_settings`` does for a file.
    """
    values = dict(_require_mapping(data, "settings dict"))
    try:
        validated = _DictOnlySettings(**values)
    except ValidationError as exc:
        raise ConfigError(
            problems_from_validation(exc, TradekitSettings, values, "settings dict")
        ) from None
    return TradekitSettings.model_construct(
        _fields_set=validated.model_fields_set,
        **{name: getattr(validated, name) for name in TradekitSettings.model_fields},
    )


def runtime_from_dict(data: Mapping[str, Any]) -> Runtime:
    """A fresh test runtime over ``settings_from_dict(data)``; nothing read from disk.

    It trades on the paper exchange whatever ``data`` says about the exchange.
    """
    from tradekit.runtime import RunMode, bootstrap

    return bootstrap(settings_from_dict(data), mode=RunMode.TEST)


def shared_container_from_dict(data: Mapping[str, Any]) -> SharedContainer:
    """The ``SharedContainer`` of ``runtime_from_dict(data)``: paper exchange, nothing from disk."""
    return runtime_from_dict(data).shared


def strategy_config_from_dict(
    data: Mapping[str, Any],
    defaults: Mapping[str, Any] | TradekitSettings | None = None,
) -> StrategyConfig:
    """A ``StrategyConfig`` from ``data`` deep-merged over ``defaults``, validated like a file.

    ``defaults`` is a ``strategy_defaults`` dict, or settings whose
    ``strategy_defaults`` to use. ``ConfigError`` lists every problem, saying when a
    bad value came from the defaults.
    """
    own = _require_mapping(data, "strategy dict")
    if isinstance(defaults, TradekitSettings):
        defaults = defaults.strategy_defaults
    base = _require_mapping(defaults if defaults is not None else {}, "strategy defaults")
    merged = deep_merge(base, own)
    strategy_id = own.get("strategy_id")
    source = f"strategy {strategy_id!r}" if isinstance(strategy_id, str) else "strategy dict"

    def origin_of(path: str) -> str | None:
        return "strategy_defaults" if _set_by_defaults_only(base, own, path) else None

    try:
        return StrategyConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(
            problems_from_validation(exc, StrategyConfig, merged, source, origin_of)
        ) from None


_MISSING = object()


def _set_by_defaults_only(base: Mapping[str, Any], own: Mapping[str, Any], path: str) -> bool:
    """True when ``path`` (``exit.stop_loss_pct``, ``indicators[0].name``) came from ``base``."""
    in_base: object = base
    in_own: object = own
    for segment in path.split("."):
        key, bracket, _ = segment.partition("[")
        in_base = in_base.get(key, _MISSING) if isinstance(in_base, Mapping) else _MISSING
        in_own = in_own.get(key, _MISSING) if isinstance(in_own, Mapping) else _MISSING
        if in_own is not _MISSING and not isinstance(in_own, Mapping):
            return False  # the strategy set a value (lists included) at or above the path
        if bracket:
            break  # lists are replaced whole: whoever set the list set its items
    return in_base is not _MISSING and in_own is _MISSING


# -- pytest fixtures ------------------------------------------------------------------------


@pytest.fixture
def tradekit_settings_data() -> dict[str, Any]:
    """The settings ``tradekit_shared`` is built from; override it in a conftest to change them.

    By default: the paper exchange with no fee and no slippage.
    """
    return {"exchange": {"kind": "paper", "fee_bps": 0.0, "slippage_bps": 0.0}}


@pytest.fixture
def tradekit_runtime(tradekit_settings_data: dict[str, Any]) -> Iterator[Runtime]:
    """A fresh test runtime for one test (paper exchange, fee 0 by default); closed at teardown."""
    runtime = runtime_from_dict(tradekit_settings_data)
    yield runtime
    runtime.close()


@pytest.fixture
def tradekit_shared(tradekit_runtime: Runtime) -> SharedContainer:
    """The ``SharedContainer`` of ``tradekit_runtime``."""
    return tradekit_runtime.shared


@pytest.fixture
def tradekit_factory(tradekit_runtime: Runtime) -> TradingOrchestratorFactory:
    """The ``TradingOrchestratorFactory`` of ``tradekit_runtime``; unloads all at teardown."""
    return tradekit_runtime.factory


@pytest.fixture
def tradekit_engine(tradekit_runtime: Runtime) -> Engine:
    """The ``Engine`` of ``tradekit_runtime``; shut down at teardown."""
    return tradekit_runtime.engine


@pytest.fixture
def tradekit_events(tradekit_shared: SharedContainer) -> Iterator[EventRecorder]:
    """An ``EventRecorder`` of every event on ``tradekit_shared``'s bus."""
    with EventRecorder(tradekit_shared.event_bus()) as recorder:
        yield recorder


__all__ = [
    "DEFAULT_START",
    "EventRecorder",
    "FakeCandleSource",
    "FakeExchange",
    "runtime_from_dict",
    "settings_from_dict",
    "shared_container_from_dict",
    "strategy_config_from_dict",
    "tradekit_engine",
    "tradekit_events",
    "tradekit_factory",
    "tradekit_runtime",
    "tradekit_settings_data",
    "tradekit_shared",
]
