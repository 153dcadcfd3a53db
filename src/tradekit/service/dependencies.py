"""What routes get through ``Depends``: the bot directory and the bearer-token check.

Both read ``app.state`` (set by ``create_app``); tests replace them with
``app.dependency_overrides``. They are ``async``: FastAPI runs a plain function
dependency on a worker thread, a hop that cost more than the check itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tradekit.service.bots import BotDirectory
from tradekit.service.token import same_token
from tradekit.templates import TemplateCatalog

UNAUTHORIZED = "missing or wrong bearer token"

bearer = HTTPBearer(
    auto_error=False,
    description="The service's API token: TRADEKIT_API_TOKEN, or the one printed at first start",
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401, and nothing else, unless the request carries the service's bearer token."""
    expected: str = request.app.state.token
    if credentials is None or not same_token(credentials.credentials, expected):
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


async def directory(request: Request) -> BotDirectory:
    """The app's bot directory."""
    found: BotDirectory = request.app.state.directory
    return found


async def template_catalog(request: Request) -> TemplateCatalog:
    """The app's template catalog (``create_app`` sets ``app.state.template_catalog``)."""
    catalog: TemplateCatalog = request.app.state.template_catalog
    return catalog


async def requester_of(request: Request) -> str:
    """Who asked, as recorded on a registry change: the API and the caller's address."""
    client = request.client
    return f"api ({client.host})" if client is not None else "api"


Directory = Annotated[BotDirectory, Depends(directory)]
Requester = Annotated[str, Depends(requester_of)]
Templates = Annotated[TemplateCatalog, Depends(template_catalog)]

__all__ = [
    "UNAUTHORIZED",
    "Directory",
    "Requester",
    "Templates",
    "directory",
    "requester_of",
    "require_token",
    "template_catalog",
]
