"""Every error the API answers, in one shape: ``{"detail": ..., "problems": [...]}``.

tradekit's own errors keep the messages the CLI prints (a refusal is 409, an
unknown bot 404, a bad config 422 with its problems); a request FastAPI cannot
read (a bad query value) is 422 with one problem per bad value; an unknown route
is 404. Nothing a caller sends can make a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tradekit.config.problems import format_path
from tradekit.errors import (
    ConfigError,
    StorageError,
    StrategyError,
    StrategyNotFoundError,
    TradekitError,
)
from tradekit.logs import log
from tradekit.service.models import ErrorBody, Problem

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    422: {"model": ErrorBody, "description": "The request's values are not valid"},
}
"""The error answers every protected route may give, for the OpenAPI schema."""

BOT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: {"model": ErrorBody, "description": "No bot with this id"},
}
CONTROL_ERRORS: dict[int | str, dict[str, Any]] = {
    **BOT_ERRORS,
    409: {"model": ErrorBody, "description": "Refused in the bot's current state"},
    503: {"model": ErrorBody, "description": "The journal database cannot be used right now"},
}


def error_response(
    status: int,
    detail: str,
    problems: Sequence[Problem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(detail=detail, problems=list(problems))
    extra = None if headers is None else dict(headers)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=extra)


def _json_value(value: Any) -> Any:
    """``value`` when JSON can carry it as it is; its text otherwise."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def request_problems(exc: RequestValidationError) -> list[Problem]:
    """One problem per value FastAPI could not read, worded as the config's problems are."""
    problems = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "missing":
            expected = "a value (it is required)"
        else:
            expected = message.removeprefix("Input should be ").removeprefix("Value error, ")
        problems.append(
            Problem(
                path=format_path(list(error.get("loc", ()))) or None,
                value=_json_value(error.get("input")),
                expected=expected,
            )
        )
    return problems


def config_problems(exc: ConfigError) -> list[Problem]:
    return [
        Problem(path=problem.path, value=None, expected=problem.message) for problem in exc.problems
    ]


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = request_problems(exc)
    return error_response(422, f"{len(problems)} problem(s) in the request", problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI could not read the body at all (bytes that are not UTF-8): a bad value too.
        problem = Problem(
            path="body", value=None, expected=f"a JSON document in UTF-8 ({exc.__cause__})"
        )
        return error_response(422, "1 problem(s) in the request", [problem])
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _tradekit_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ConfigError):
        return error_response(422, str(exc), config_problems(exc))
    if isinstance(exc, StrategyNotFoundError):
        return error_response(404, str(exc))
    if isinstance(exc, StrategyError):
        return error_response(409, str(exc))
    if isinstance(exc, StorageError):
        log.error("API request {} {} failed: {}", request.method, request.url.path, exc)
        return error_response(503, str(exc))
    return error_response(400, str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.opt(exception=exc).error("API request {} {} failed", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer an ``ErrorBody``."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(TradekitError, _tradekit_error)
    app.add_exception_handler(Exception, _unexpected)


__all__ = [
    "BOT_ERRORS",
    "CONTROL_ERRORS",
    "ERROR_RESPONSES",
    "config_problems",
    "error_response",
    "install_error_handlers",
    "request_problems",
]
