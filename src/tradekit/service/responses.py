"""JSON answers serialized by the route itself.

A route that returns a pydantic model has FastAPI validate it against the route's
response model and serialize it, on a worker thread for a plain function route:
one more thread hop and one more validation per call, under the interpreter lock
the engine shares. A route returning ``json_response(model)`` skips both; it still
declares ``response_model`` for the OpenAPI schema, and the model it serializes is
that response model, so the answer matches the schema.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel

JSON = "application/json"


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as the JSON answer with ``status_code``."""
    return Response(model.model_dump_json().encode(), status_code=status_code, media_type=JSON)


__all__ = ["JSON", "json_response"]
