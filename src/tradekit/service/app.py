"""``create_app``: the bot service's FastAPI app, built from what it needs, so tests hand it
fakes (a journal on a temporary database, an engine link that is not an engine)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from tradekit import __version__
from tradekit.config.settings import TradekitSettings
from tradekit.service.bots import DEFAULT_CHANGE_TIMEOUT, BotDirectory, EngineLink
from tradekit.service.errors import install_error_handlers
from tradekit.service.event_stream import EventStream
from tradekit.service.routers import bots, engine, figures, stream, symbols, templates, web
from tradekit.services.journal.store import SqlJournal
from tradekit.templates import TemplateCatalog, bundled_templates


def create_app(
    *,
    journal: SqlJournal,
    token: str,
    engine_link: EngineLink | None = None,
    cors_origins: Sequence[str] = (),
    change_timeout: float = DEFAULT_CHANGE_TIMEOUT,
    settings: TradekitSettings | None = None,
    template_catalog: TemplateCatalog | None = None,
    event_stream: EventStream | None = None,
    stream_heartbeat: float = stream.DEFAULT_HEARTBEAT_SECONDS,
) -> FastAPI:
    """The API over ``journal`` (read, and written for registry changes, never locked).

    ``engine_link`` is the running engine (``None``: the journal is the only
    source, and changes wait for the next run). ``token`` is the bearer token every
    route but ``GET /api/health`` requires. ``cors_origins`` are the only web
    origins allowed to call from a browser (none by default). A control route
    waits at most ``change_timeout`` seconds for the engine to apply its change.
    ``settings`` give the ``strategy_defaults`` a new bot's template is merged over;
    ``template_catalog`` the templates bots are made from (default: the bundled ones).
    ``event_stream`` is what ``GET /api/stream`` serves (the engine feeds it; default: one
    nobody feeds), with a keep-alive comment every ``stream_heartbeat`` idle seconds.
    The web page is served at ``/``.
    """
    catalog = template_catalog or TemplateCatalog(bundled_templates())
    app = FastAPI(
        title="tradekit",
        version=__version__,
        summary="Run and watch many trading bots: their state, positions, trades and events.",
    )
    app.state.token = token
    app.state.settings = settings
    app.state.template_catalog = catalog
    app.state.event_stream = event_stream or EventStream()
    app.state.stream_heartbeat = stream_heartbeat
    template_ids = frozenset(template.template_id for template in catalog.templates)
    app.state.directory = BotDirectory(journal, engine_link, change_timeout, template_ids)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    install_error_handlers(app)
    app.include_router(engine.health_router)
    app.include_router(bots.router)
    app.include_router(figures.router)
    app.include_router(symbols.router)
    app.include_router(templates.router)
    app.include_router(engine.router)
    app.include_router(stream.router)
    app.include_router(web.router)
    return app


__all__ = ["create_app"]
