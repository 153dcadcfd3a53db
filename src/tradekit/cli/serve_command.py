"""``tradekit serve``: the engine of ``tradekit run`` and the bot service's REST API, each in a
process of its own, over the same journal database.

It takes every option of ``tradekit run`` (mode, source, database, health
report, selection) plus where the API listens. The API binds 127.0.0.1 unless
told otherwise, and warns when it is not. Its bearer token comes from
``TRADEKIT_API_TOKEN``, or is made at first start, kept in a file only its
owner can read and printed that once. Ctrl-C, SIGTERM and ``POST
/api/engine/stop`` stop the engine (which commits its journal) and the API.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tradekit.cli.app import (
    DEFAULT_STRATEGIES,
    ConfigOption,
    HealthFileOption,
    HealthIntervalOption,
    StrategiesOption,
    app,
    effective_logging,
    err,
    out,
    run_guarded,
)
from tradekit.cli.run_command import (
    EXIT_ORDERS_FAILED,
    BarsOption,
    DataOption,
    DbOption,
    ExchangeOption,
    ModeOption,
    OnlyOption,
    RunModeChoice,
    RunRequest,
    SandboxOption,
    SeedOption,
    SourceKind,
    SourceOption,
    SpeedOption,
    SymbolsOption,
    plan_run,
    print_summary,
    stop_on_signals,
)
from tradekit.errors import TradekitError
from tradekit.terminal import plain_text

if TYPE_CHECKING:
    from tradekit.runtime.live import LiveRunSummary


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Where the API listens; other than 127.0.0.1 warns.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="The API's port (0: any free one).")
    ] = 8000,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            dir_okay=False,
            help="Where a generated API token is kept (default: service.token_path, else "
            "next to a SQLite journal as <db>.api-token).",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="A web origin allowed to call the API from a browser (added to "
            "service.cors_origins); repeat for more. None by default.",
        ),
    ] = None,
    mode: ModeOption = RunModeChoice.PAPER,
    source: SourceOption = SourceKind.SYNTHETIC,
    exchange: ExchangeOption = None,
    sandbox: SandboxOption = None,
    data: DataOption = None,
    speed: SpeedOption = 0.0,
    bars: BarsOption = 2000,
    seed: SeedOption = 7,
    db: DbOption = None,
    strategies: StrategiesOption = DEFAULT_STRATEGIES,
    config: ConfigOption = None,
    health_interval: HealthIntervalOption = None,
    health_file: HealthFileOption = None,
    symbols: SymbolsOption = None,
    only: OnlyOption = None,
) -> None:
    """Run the bots and a REST API over them (docs at /docs); Ctrl-C or SIGTERM stops both.

    The engine runs what the registry says, as 'tradekit run' does; the API lists
    the bots and starts, stops, resumes and deletes them through the registry.
    """
    request = RunRequest(
        mode=mode,
        source=source,
        exchange=exchange,
        sandbox=sandbox,
        data=data,
        speed=speed,
        bars=bars,
        seed=seed,
        db=db,
        strategies=strategies,
        config=config,
        health_interval=health_interval,
        health_file=health_file,
        symbols=symbols,
        only=only,
    )
    stop = threading.Event()
    restore = stop_on_signals(stop)

    def go() -> LiveRunSummary | None:
        # Imported here: 'tradekit --help' and the other commands never load FastAPI.
        try:
            from tradekit.service.server import ServiceOptions, is_local, serve
        except ImportError as exc:
            if exc.name not in SERVICE_PACKAGES:
                raise
            raise TradekitError(
                f"tradekit serve needs FastAPI and uvicorn ({exc.name} is not installed); "
                "install the service extra: pip install 'tradekit[service]'"
            ) from None
        from tradekit.service.token import api_token
        from tradekit.templates import load_templates, templates_folder_beside

        planned = plan_run(request)
        templates_folder = templates_folder_beside(Path(strategies))
        load_templates(templates_folder)  # a bad template is reported before anything starts
        token = api_token(planned.settings, token_file)
        if token.generated:
            _say(f"API token (kept in {token.source}; shown only this once): {token.value}")
        else:
            _say(f"API token: the one in {token.source}")
        if not is_local(host):
            err.print(
                plain_text(
                    f"warning: the API listens on {host}, reachable from other machines; "
                    "anyone who can reach it and has the token controls the bots. Put it "
                    "behind TLS, or bind 127.0.0.1"
                ),
                markup=False,
                highlight=False,
            )
        origins = (*planned.settings.service.cors_origins, *(cors_origin or ()))
        log_level, log_json_path = effective_logging(planned.settings.logging)
        return serve(
            planned.run,
            mode=mode.value,
            source=source.value,
            database_url=planned.database_url,
            options=ServiceOptions(
                host,
                port,
                token.value,
                origins,
                settings=planned.settings,
                templates_folder=templates_folder,
                log_level=log_level,
                log_json_path=log_json_path,
            ),
            stop=stop,
            announce=_say,
        )

    try:
        summary = run_guarded(go)
    finally:
        restore()
    if summary is None:
        return
    print_summary(summary)
    if summary.failed_orders:
        raise typer.Exit(EXIT_ORDERS_FAILED)


SERVICE_PACKAGES = frozenset({"fastapi", "uvicorn", "starlette"})
"""What the service extra installs; a missing one is named with the command that installs it."""


def _say(text: str) -> None:
    out.print(plain_text(text), markup=False, highlight=False)
    out.file.flush()


__all__ = ["serve"]
