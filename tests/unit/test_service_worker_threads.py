"""The service's server runs its routes on a few worker threads, not anyio's default forty."""

from __future__ import annotations

import asyncio
import threading

import anyio.to_thread
import httpx
import uvicorn
from fastapi import FastAPI

from tradekit.service.api_process import API_WORKER_THREADS, ApiServer
from tradekit.service.event_stream import EventStream
from tradekit.service.server import bind

WAIT_SECONDS = 10.0


class TestWorkerThreads:
    def test_the_server_limits_the_worker_threads_of_its_loop(self) -> None:
        app = FastAPI()

        @app.get("/limit")
        async def limit() -> float:
            return anyio.to_thread.current_default_thread_limiter().total_tokens

        listener = bind("127.0.0.1", 0)
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = ApiServer(config, EventStream())
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True
        )
        thread.start()
        try:
            host, port = listener.getsockname()[:2]
            # The socket listens already: the call waits in its backlog until the server runs.
            answer = httpx.get(f"http://{host}:{port}/limit", timeout=WAIT_SECONDS)
            assert answer.json() == API_WORKER_THREADS
        finally:
            server.should_exit = True
            thread.join(WAIT_SECONDS)
            listener.close()
        assert not thread.is_alive()
