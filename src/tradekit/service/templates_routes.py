"""``/api/strategies``: the strategy templates a new bot is made from, and their parameters.

The app that includes ``router`` applies authentication and provides the
catalog: it sets ``app.state.template_catalog`` (from ``load_templates``) or
overrides ``template_catalog``; without either, the bundled templates are served.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from tradekit.templates import TemplateCatalog, TemplateDetail, TemplateSummary, bundled_templates

router = APIRouter(prefix="/api/strategies", tags=["strategies"])


def template_catalog(request: Request) -> TemplateCatalog:
    """The app's template catalog (``app.state.template_catalog``), else the bundled templates."""
    catalog = getattr(request.app.state, "template_catalog", None)
    if isinstance(catalog, TemplateCatalog):
        return catalog
    return TemplateCatalog(bundled_templates())


Catalog = Annotated[TemplateCatalog, Depends(template_catalog)]


@router.get("", summary="List the strategy templates")
def list_templates(catalog: Catalog) -> list[TemplateSummary]:
    """Every template a bot can be made from: bundled ones first, then the user's."""
    return [template.summary() for template in catalog.templates]


@router.get(
    "/{template_id}",
    summary="One template's parameter definitions and JSON Schema",
    responses={404: {"description": "No template has this id."}},
)
def get_template(template_id: str, catalog: Catalog) -> TemplateDetail:
    """The template's typed parameters (limits, choices, defaults, units, help) and the
    JSON Schema of the ``params`` object ``POST /api/bots`` takes for it."""
    template = catalog.find(template_id)
    if template is None:
        raise HTTPException(status_code=404, detail=catalog.unknown_message(template_id))
    return template.detail()


__all__ = ["router", "template_catalog"]
