"""The web page: ``/`` and its static files, shipped in the package (``tradekit/service/web``).

The page is plain HTML, CSS and JavaScript: no build step, nothing fetched from
elsewhere. It holds no data itself: it asks for the API token and calls the
API with it, so serving these files needs no token. A content security policy
lets the page load and call only this origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

WEB_FOLDER = Path(__file__).resolve().parent.parent / "web"
MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
"""The only files served: nothing else in the package can be asked for by name."""
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(name: str) -> FileResponse:
    return FileResponse(WEB_FOLDER / name, media_type=MEDIA_TYPES[name], headers=SECURITY_HEADERS)


@router.get("/")
def page() -> FileResponse:
    """The dashboard: bots by symbol, new bot and edit forms, a page per bot."""
    return _file("index.html")


@router.get("/web/{name}")
def asset(name: str) -> FileResponse:
    """The page's script and style sheet."""
    if name not in MEDIA_TYPES or name == "index.html":
        raise HTTPException(404, f"no file {name!r} here")
    return _file(name)


__all__ = ["WEB_FOLDER", "router"]
