"""The bot service's bearer token: from ``TRADEKIT_API_TOKEN``, or generated once and kept
in a file only its owner can read.

The token file sits next to a SQLite journal (``tradekit.db`` ->
``tradekit.db.api-token``), or where ``service.token_path`` says. A file that
others may read is refused rather than trusted. Tokens are compared in constant
time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from tradekit.config.settings import TradekitSettings
from tradekit.errors import ConfigError
from tradekit.services.journal.sqlite import beside_journal

TOKEN_FILE_SUFFIX = ".api-token"
TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class ApiToken:
    """The token the service checks, where it came from, and whether it was just made."""

    value: str
    source: str
    generated: bool


def default_token_path(database_url: str) -> Path:
    """``<db>.api-token`` next to a SQLite journal file; ``./tradekit.api-token`` otherwise."""
    return beside_journal(database_url, TOKEN_FILE_SUFFIX)


def api_token(settings: TradekitSettings, token_file: Path | None = None) -> ApiToken:
    """The service's token: ``api_token`` (``TRADEKIT_API_TOKEN``) when set, else the one kept
    in the token file, made (and written with mode 0600) when there is none."""
    if settings.api_token is not None:
        return ApiToken(settings.api_token.get_secret_value(), "TRADEKIT_API_TOKEN", False)
    configured = settings.service.token_path
    path = token_file or (
        Path(configured) if configured else default_token_path(settings.storage.database_url)
    )
    if path.exists():
        return ApiToken(_read_token(path), str(path), False)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write the API token file {path}: {exc.strerror}") from None
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return ApiToken(token, str(path), True)


def _read_token(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"the API token file {path} may be read by others (mode {mode:04o}); make it "
            f"private with 'chmod 600 {path}', or delete it to have a new token made"
        )
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise ConfigError(
            f"the API token file {path} holds no usable token (expected at least 16 "
            "characters); delete it to have a new one made"
        )
    return token


def same_token(given: str, expected: str) -> bool:
    """True when ``given`` is ``expected``, in time that does not depend on where they differ."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


__all__ = ["ApiToken", "api_token", "default_token_path", "same_token"]
