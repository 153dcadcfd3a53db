"""The bot service: a REST API and a web dashboard over the registry, in the engine's process.

``tradekit serve`` runs the engine on its own thread and a FastAPI app (uvicorn)
over the same journal database; every change goes through the registry, as
``tradekit strategies ...`` does, so the API, the CLI and the web page agree.
"""
