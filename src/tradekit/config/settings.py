"""``TradekitSettings``: the process-wide base configuration and its sections.

Values come, from lowest to highest precedence, from the defaults below, the
JSON base config file, a ``.env`` file and ``TRADEKIT_*`` environment variables
(nested with ``__``, e.g. ``TRADEKIT_EXCHANGE__FEE_BPS=7.5``). Arguments passed
in code win over all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tradekit.config.strict_json import checked_json_value

ENV_PREFIX = "TRADEKIT_"
ENV_NESTED_DELIMITER = "__"

LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]

_SECTION = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class EngineSettings(BaseModel):
    """How the engine runs strategies: how many at once, and when to quarantine one."""

    model_config = _SECTION

    max_concurrent_strategies: PositiveInt = 1000
    failures_before_quarantine: PositiveInt = 3


class CcxtSettings(BaseModel):
    """Which ccxt exchange to reach, how, and with which credentials.

    Used for ``kind = "ccxt"`` orders and for ``--source ccxt`` market data. The
    credentials come from the environment only (see ``config.live_safety``); the
    rest may sit in the base config file.
    """

    model_config = _SECTION

    exchange_id: str = "binance"
    """The ccxt exchange class, e.g. ``binance`` or ``kraken``."""
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    sandbox: bool = True
    """Use the venue's test network (``set_sandbox_mode``); false means real money."""
    urls: dict[str, Any] | None = None
    """Entries merged over the exchange's ``urls["api"]`` (after sandbox mode), nested
    dicts merged key by key: e.g. ``{"public": "http://127.0.0.1:8080/api/v3"}``.
    Every value is an ``http(s)://`` or ``ws(s)://`` URL or a dict of them."""
    timeout_ms: PositiveInt | None = None
    """ccxt's request ``timeout`` in milliseconds; ``None`` keeps ccxt's default (10 s)."""
    rate_limit_ms: PositiveInt | None = None
    """Milliseconds between two requests (ccxt's ``rateLimit``, with ``enableRateLimit``
    always on); ``None`` keeps the venue's own figure."""
    poll_interval_seconds: PositiveFloat | None = None
    """Seconds between two ``fetch_ohlcv`` polls of a live feed on a venue without
    websockets; ``None`` derives it from each feed's timeframe: a tenth of the
    timeframe, at most 10 s (``tradekit.data.default_poll_seconds``)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Merged into the exchange's ccxt ``options``, e.g.
    ``{"fetchMarkets": {"types": ["spot"]}}`` to load only Binance spot markets."""

    @field_validator("urls")
    @classmethod
    def _urls_are_urls(cls, urls: dict[str, Any] | None) -> dict[str, Any] | None:
        if urls is not None:
            _check_urls(urls, "urls")
        return urls


_URL_SCHEMES = ("http://", "https://", "ws://", "wss://")


def _check_urls(urls: Mapping[str, Any], path: str) -> None:
    """``ValueError`` naming the first entry that is neither a URL nor a dict of URLs."""
    for key, value in urls.items():
        where = f"{path}.{key}"
        if isinstance(value, Mapping):
            _check_urls(value, where)
        elif not (isinstance(value, str) and value.startswith(_URL_SCHEMES) and len(value) > 8):
            raise ValueError(
                f"{where} must be a URL starting with {', '.join(_URL_SCHEMES)} "
                f"(or a dict of them), got {value!r}"
            )


class ExchangeSettings(BaseModel):
    """The exchange all strategies trade through: the paper simulator or a ccxt venue."""

    model_config = _SECTION

    kind: Literal["paper", "ccxt"] = "paper"
    fee_bps: float = Field(default=10.0, ge=0, le=1000)
    slippage_bps: float = Field(default=0.0, ge=0, le=1000)
    fill_rule: Literal["next_open", "close"] = "next_open"
    ccxt: CcxtSettings = CcxtSettings()


class GlobalRiskSettings(BaseModel):
    """Caps across all strategies, in quote currency; ``None`` means no cap."""

    model_config = _SECTION

    max_exposure_per_symbol: PositiveFloat | None = None
    max_total_exposure: PositiveFloat | None = None


class StorageSettings(BaseModel):
    """Where the journal lives: any SQLAlchemy URL; SQLite by default."""

    model_config = _SECTION

    database_url: str = Field(default="sqlite:///tradekit.db", min_length=1)


class LoggingSettings(BaseModel):
    """Log level, an optional JSON-lines sink, and a run's health report.

    Every ``health_interval`` seconds a run logs one health line per strategy and
    writes ``health_path`` (default: next to a SQLite journal, ``<db>.health.json``).
    """

    model_config = _SECTION

    level: LogLevel = "INFO"
    json_path: str | None = None
    health_interval: PositiveFloat = 60.0
    health_path: str | None = None


class ServiceSettings(BaseModel):
    """The bot service (``tradekit serve``): who may call its API from a browser, and where
    its generated API token is kept.

    ``cors_origins`` lists the web origins (``https://host:port``) allowed to call the
    API from a page they serve; empty (the default) allows none. ``token_path`` is where
    a generated token is stored (default: next to a SQLite journal, ``<db>.api-token``).
    """

    model_config = _SECTION

    cors_origins: tuple[str, ...] = ()
    token_path: str | None = None


# The parsed base config file for the settings being built. ``load_settings``
# sets it around construction so the file sits below .env and the environment.
_base_file_data: ContextVar[dict[str, Any] | None] = ContextVar("_base_file_data", default=None)


class _BaseFileSource(PydanticBaseSettingsSource):
    """Feeds the already-parsed JSON base config file into pydantic-settings."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        data = _base_file_data.get() or {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_base_file_data.get() or {})


class _KnownFieldsOnly(PydanticBaseSettingsSource):
    """Keeps only the top-level settings a source provides, dropping unrelated variables.

    A shared ``.env`` file may hold variables for other programs; unknown
    ``TRADEKIT_*`` variables are reported separately, naming the file they are in.
    """

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        return {key: value for key, value in self._inner().items() if key in fields}


class TradekitSettings(BaseSettings):
    """The base configuration, one per process; frozen once built.

    Build it with ``tradekit.load_settings(path)`` to read a JSON file and keep
    the provenance of every value, or directly (``TradekitSettings()``) for
    defaults plus the environment.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_file=".env",
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    engine: EngineSettings = EngineSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    risk: GlobalRiskSettings = GlobalRiskSettings()
    storage: StorageSettings = StorageSettings()
    logging: LoggingSettings = LoggingSettings()
    service: ServiceSettings = ServiceSettings()
    api_token: SecretStr | None = Field(default=None, min_length=16)
    """The bot service's bearer token (``TRADEKIT_API_TOKEN``); generated at first start
    when unset."""
    live_orders_enabled: bool = False
    strategy_defaults: dict[str, Any] = Field(default_factory=dict)

    _defaults_are_finite = field_validator("strategy_defaults")(checked_json_value)

    _provenance: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def provenance(self) -> Mapping[str, str]:
        """For each dotted key set outside the defaults, the file or variable that set it."""
        return MappingProxyType(self._provenance)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _KnownFieldsOnly(settings_cls, dotenv_settings),
            _BaseFileSource(settings_cls),
            file_secret_settings,
        )


__all__ = [
    "CcxtSettings",
    "EngineSettings",
    "ExchangeSettings",
    "GlobalRiskSettings",
    "LoggingSettings",
    "ServiceSettings",
    "StorageSettings",
    "TradekitSettings",
]
