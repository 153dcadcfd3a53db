"""``/api/strategies``: the strategy templates a new bot is made from, and their parameters.

``create_app`` sets ``app.state.template_catalog`` (bundled templates plus the
user's folder, from ``load_templates``); tests may override ``template_catalog``.
Like every route but health, these need the bearer token.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from tradekit.service.dependencies import Templates, require_token
from tradekit.service.errors import ERROR_RESPONSES
from tradekit.service.models import ErrorBody
from tradekit.templates import TemplateDetail, TemplateSummary

router = APIRouter(
    prefix="/api/strategies",
    tags=["strategies"],
    dependencies=[Depends(require_token)],
    responses=ERROR_RESPONSES,
)


@router.get("", summary="List the strategy templates")
def list_templates(catalog: Templates) -> list[TemplateSummary]:
    """Every template a bot can be made from: bundled ones first, then the user's."""
    return [template.summary() for template in catalog.templates]


@router.get(
    "/{template_id}",
    summary="One template's parameter definitions and JSON Schema",
    responses={404: {"model": ErrorBody, "description": "No template has this id"}},
)
def get_template(template_id: str, catalog: Templates) -> TemplateDetail:
    """The template's typed parameters (limits, choices, defaults, units, help) and the
    JSON Schema of the ``params`` object ``POST /api/bots`` takes for it."""
    template = catalog.find(template_id)
    if template is None:
        raise HTTPException(status_code=404, detail=catalog.unknown_message(template_id))
    return template.detail()


__all__ = ["router"]
