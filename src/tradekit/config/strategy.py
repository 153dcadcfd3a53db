"""``StrategyConfig`` and its sections: everything one strategy's JSON file can say.

All models are frozen and reject unknown keys, so a typo in a strategy file is
an error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tradekit.config.strict_json import checked_json_value
from tradekit.timeframes import TIMEFRAME_SECONDS, is_higher_timeframe, unknown_timeframe_message

Percent = Annotated[float, Field(gt=0, le=100)]
"""A percentage in (0, 100]."""

Score = Annotated[float, Field(gt=0, le=1)]
"""A weighted analyzer score in (0, 1]."""

StrategyId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$",
        description="Lowercase slug: letters, digits, '-' or '_' between them.",
    ),
]

Symbol = Annotated[
    str,
    Field(
        pattern=r"^[A-Z0-9]+/[A-Z0-9]+(?::[A-Z0-9]+)?$",
        description="Unified symbol such as 'BTC/USDT' (or 'BTC/USDT:USDT' for a swap).",
    ),
]

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]

ParamValue = float | int | bool | str

# Infinity and NaN are never a meaningful setting: ``capital = inf`` would give infinite equity.
_MODEL = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _check_timeframe(value: str) -> str:
    if value not in TIMEFRAME_SECONDS:
        raise ValueError(unknown_timeframe_message(value))
    return value


class IndicatorConfig(BaseModel):
    """One indicator the strategy uses: its name, parameters, and the alias analyzers use."""

    model_config = _MODEL

    name: str = Field(min_length=1)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    alias: Identifier | None = None

    @property
    def key(self) -> str:
        """The name analyzers refer to this indicator by: the alias, else the indicator name."""
        return self.alias or self.name


class AnalyzerConfig(BaseModel):
    """One analyzer: its type, the weight of its vote, and its type-specific parameters."""

    model_config = _MODEL

    type: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, le=100)
    params: dict[str, Any] = Field(default_factory=dict)

    # Parameters are free-form until the analyzer checks them, so the model's own
    # refusal of non-finite numbers does not reach them.
    _params_are_finite = field_validator("params")(checked_json_value)


class SizingConfig(BaseModel):
    """How big a new position is: a fixed quote amount, a share of equity, or risk-based."""

    model_config = _MODEL

    mode: Literal["fixed_quote", "percent_equity", "risk"] = "fixed_quote"
    quote_amount: PositiveFloat = 100.0
    equity_pct: Percent | None = None
    risk_pct: Percent | None = None

    @model_validator(mode="after")
    def _mode_has_its_amount(self) -> Self:
        needed = {"percent_equity": "equity_pct", "risk": "risk_pct"}.get(self.mode)
        if needed and getattr(self, needed) is None:
            raise ValueError(f"sizing mode {self.mode!r} needs '{needed}' to be set")
        return self


class EntryConfig(BaseModel):
    """When to enter: the weighted score to reach, which side, and the size."""

    model_config = _MODEL

    min_score: Score = 0.5
    side: Literal["long", "short", "both"] = "long"
    sizing: SizingConfig = SizingConfig()


class PartialTakeProfit(BaseModel):
    """Close ``close_pct`` of the position once it is ``profit_pct`` in profit."""

    model_config = _MODEL

    profit_pct: PositiveFloat
    close_pct: Percent


class ExitConfig(BaseModel):
    """When to leave: stops, targets, trailing, time stop and signal exits."""

    model_config = _MODEL

    stop_loss_pct: Annotated[float, Field(gt=0, lt=100)] | None = None
    take_profit_pct: PositiveFloat | None = None
    trailing_activation_pct: PositiveFloat | None = None
    trailing_distance_pct: Annotated[float, Field(gt=0, lt=100)] | None = None
    exit_on_opposite_signal: bool = False
    opposite_signal_min_score: Score = 0.5
    min_profit_pct_for_signal_exit: float | None = None
    time_stop_bars: PositiveInt | None = None
    partial_take_profits: tuple[PartialTakeProfit, ...] = ()

    @model_validator(mode="after")
    def _trailing_is_complete(self) -> Self:
        pair = ("trailing_activation_pct", "trailing_distance_pct")
        missing = [name for name in pair if getattr(self, name) is None]
        if len(missing) == 1:
            present = next(name for name in pair if name not in missing)
            raise ValueError(
                f"'{present}' is set but '{missing[0]}' is missing; set both or neither"
            )
        return self

    @model_validator(mode="after")
    def _partials_are_ordered(self) -> Self:
        levels = [partial.profit_pct for partial in self.partial_take_profits]
        if levels != sorted(set(levels)):
            raise ValueError(
                f"partial_take_profits must have strictly increasing profit_pct, got {levels}"
            )
        total = sum(partial.close_pct for partial in self.partial_take_profits)
        if total > 100:
            raise ValueError(f"partial_take_profits close {total}% in total; expected at most 100%")
        return self


class SessionFilter(BaseModel):
    """Allow entries only between ``start`` and ``end`` (UTC, ``HH:MM``; may wrap midnight)."""

    model_config = _MODEL

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _is_clock_time(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"expected a time of day as 'HH:MM' (00:00 to 23:59), got {value!r}")
        return value


class VolatilityFilter(BaseModel):
    """Allow entries only while ATR, as a percent of price, stays within bounds."""

    model_config = _MODEL

    atr_length: PositiveInt = 14
    min_atr_pct: NonNegativeFloat | None = None
    max_atr_pct: PositiveFloat | None = None

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> Self:
        low, high = self.min_atr_pct, self.max_atr_pct
        if low is not None and high is not None and low >= high:
            raise ValueError(f"min_atr_pct ({low}) must be below max_atr_pct ({high})")
        return self


class TrendFilter(BaseModel):
    """Allow longs only above a moving average and shorts only below it."""

    model_config = _MODEL

    ma: Literal["sma", "ema"] = "ema"
    length: PositiveInt = 200


class FiltersConfig(BaseModel):
    """Conditions that block new entries; exits are never filtered."""

    model_config = _MODEL

    session: SessionFilter | None = None
    volatility: VolatilityFilter | None = None
    min_volume: PositiveFloat | None = None
    trend: TrendFilter | None = None


class MTFConfig(BaseModel):
    """A higher-timeframe condition that must hold before an entry on the strategy timeframe."""

    model_config = _MODEL

    timeframe: str
    ma: Literal["sma", "ema"] = "ema"
    length: PositiveInt = 50
    rule: Literal["trend_agrees", "close_above", "close_below", "rising", "falling"] = (
        "trend_agrees"
    )

    _timeframe_known = field_validator("timeframe")(_check_timeframe)


class StrategyRiskConfig(BaseModel):
    """Limits inside one strategy."""

    model_config = _MODEL

    max_open_positions: PositiveInt = 1
    risk_per_trade_pct: Percent = 2.0
    daily_loss_limit_pct: Percent | None = None


class DCAConfig(BaseModel):
    """Adding to an open position: up to ``safety_orders`` adds, each ``volume_scale`` x the last.

    With ``trigger = "price_step"`` an add fires when price has moved ``step_pct``
    against the last entry (each step ``step_scale`` x the previous one); with
    ``trigger = "signal"`` it fires whenever the entry score is reached again
    (time-based DCA).
    """

    model_config = _MODEL

    safety_orders: PositiveInt
    trigger: Literal["price_step", "signal"] = "price_step"
    step_pct: Annotated[float, Field(gt=0, lt=100)] | None = None
    volume_scale: PositiveFloat = 1.0
    step_scale: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _price_step_has_step(self) -> Self:
        if self.trigger == "price_step" and self.step_pct is None:
            raise ValueError("dca trigger 'price_step' needs 'step_pct' to be set")
        return self


class StrategyConfig(BaseModel):
    """One strategy, merged over ``strategy_defaults`` and validated; frozen."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, title="tradekit strategy"
    )

    strategy_id: StrategyId
    name: str = Field(default="", validate_default=True)
    description: str = ""
    enabled: bool = True
    symbols: tuple[Symbol, ...] = Field(min_length=1)
    timeframe: str
    capital: PositiveFloat = 10_000.0
    indicators: tuple[IndicatorConfig, ...] = ()
    analyzers: tuple[AnalyzerConfig, ...] = Field(min_length=1)
    entry: EntryConfig = EntryConfig()
    exit: ExitConfig = Field(default=ExitConfig(), validate_default=True)
    filters: FiltersConfig = FiltersConfig()
    mtf: MTFConfig | None = None
    risk: StrategyRiskConfig = StrategyRiskConfig()
    dca: DCAConfig | None = None

    _timeframe_known = field_validator("timeframe")(_check_timeframe)

    @field_validator("symbols")
    @classmethod
    def _symbols_unique(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        duplicates = sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})
        if duplicates:
            raise ValueError(f"symbols must be unique; {', '.join(duplicates)} listed twice")
        return symbols

    @field_validator("indicators")
    @classmethod
    def _indicator_keys_unique(
        cls, indicators: tuple[IndicatorConfig, ...]
    ) -> tuple[IndicatorConfig, ...]:
        keys = [indicator.key for indicator in indicators]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(
                f"indicator keys must be unique; {', '.join(duplicates)} used twice "
                "(give one of them an 'alias')"
            )
        return indicators

    @field_validator("name", mode="after")
    @classmethod
    def _name_defaults_to_id(cls, name: str, info: ValidationInfo) -> str:
        return name or str(info.data.get("strategy_id", ""))

    @field_validator("exit", mode="after")
    @classmethod
    def _risk_sizing_has_stop(cls, exit_config: ExitConfig, info: ValidationInfo) -> ExitConfig:
        entry = info.data.get("entry")
        if entry is not None and entry.sizing.mode == "risk" and exit_config.stop_loss_pct is None:
            raise ValueError(
                "entry.sizing.mode 'risk' sizes positions from the stop distance; "
                "set exit.stop_loss_pct"
            )
        return exit_config

    @field_validator("mtf", mode="after")
    @classmethod
    def _mtf_is_higher(cls, mtf: MTFConfig | None, info: ValidationInfo) -> MTFConfig | None:
        timeframe = info.data.get("timeframe")
        if mtf is not None and timeframe and not is_higher_timeframe(mtf.timeframe, timeframe):
            raise ValueError(
                f"mtf.timeframe {mtf.timeframe!r} must be higher than the strategy timeframe "
                f"{timeframe!r} and a whole multiple of it"
            )
        return mtf

    @property
    def indicator_keys(self) -> tuple[str, ...]:
        return tuple(indicator.key for indicator in self.indicators)


__all__ = [
    "AnalyzerConfig",
    "DCAConfig",
    "EntryConfig",
    "ExitConfig",
    "FiltersConfig",
    "IndicatorConfig",
    "MTFConfig",
    "PartialTakeProfit",
    "Percent",
    "Score",
    "SessionFilter",
    "SizingConfig",
    "StrategyConfig",
    "StrategyRiskConfig",
    "TrendFilter",
    "VolatilityFilter",
]
