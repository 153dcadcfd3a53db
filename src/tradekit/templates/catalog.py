"""``TemplateCatalog``: the templates one process offers, looked up by id, and the bot-facing calls.

``load_templates(folder)`` gives the bundled templates plus the user's;
``build_config`` and ``params_from_config`` work on the bundled ones unless a
catalog is passed (the service passes the one it loaded at start).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tradekit.config.settings import TradekitSettings
from tradekit.config.strategy import StrategyConfig
from tradekit.errors import ConfigError, ConfigProblem
from tradekit.templates.loading import BUNDLED_SOURCE, bundled_templates, user_templates
from tradekit.templates.models import JsonScalar
from tradekit.templates.template import StrategyTemplate

TEMPLATE_KEY = "template"


class TemplateCatalog:
    """The templates by id, bundled ones first; one per process, built at start."""

    def __init__(self, templates: Iterable[StrategyTemplate]) -> None:
        self._templates = {template.template_id: template for template in templates}

    @property
    def templates(self) -> tuple[StrategyTemplate, ...]:
        return tuple(self._templates.values())

    def find(self, template_id: str) -> StrategyTemplate | None:
        return self._templates.get(template_id)

    def unknown_message(self, template_id: str) -> str:
        """``unknown template 'rsii'; did you mean 'rsi'?`` (or the list of known ids)."""
        known = sorted(self._templates)
        close = difflib.get_close_matches(template_id, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
        return f"unknown template {template_id!r}{hint}"

    def get(self, template_id: str) -> StrategyTemplate:
        """The template ``template_id``; ``ConfigError`` at path ``template`` when unknown."""
        template = self.find(template_id)
        if template is None:
            raise ConfigError([ConfigProblem(self.unknown_message(template_id), path=TEMPLATE_KEY)])
        return template


def load_templates(folder: str | Path | None = None, *, required: bool = False) -> TemplateCatalog:
    """The bundled templates plus those in ``folder``.

    A missing ``folder`` is skipped unless ``required`` (a folder the user named);
    a bad template file raises ``ConfigError`` naming the file, key, value and expectation.
    """
    bundled = bundled_templates()
    templates = list(bundled)
    if folder is not None and (required or Path(folder).exists()):
        taken = {template.template_id: f"the {BUNDLED_SOURCE} template" for template in bundled}
        templates.extend(user_templates(folder, taken))
    return TemplateCatalog(templates)


def build_config(
    template_id: str,
    name: str,
    params: Mapping[str, Any],
    symbols: Sequence[str],
    timeframe: str,
    *,
    strategy_id: str | None = None,
    settings: TradekitSettings | None = None,
    catalog: TemplateCatalog | None = None,
) -> StrategyConfig:
    """The validated strategy of a bot named ``name`` made from template ``template_id``.

    See ``StrategyTemplate.build_config``; an unknown template is a problem at ``template``.
    """
    chosen = (catalog or TemplateCatalog(bundled_templates())).get(template_id)
    return chosen.build_config(
        name, params, symbols, timeframe, strategy_id=strategy_id, settings=settings
    )


def params_from_config(
    template_id: str, config: StrategyConfig, *, catalog: TemplateCatalog | None = None
) -> dict[str, JsonScalar]:
    """The parameter values of ``config``, made from template ``template_id``."""
    return (
        (catalog or TemplateCatalog(bundled_templates()))
        .get(template_id)
        .params_from_config(config)
    )


__all__ = [
    "TEMPLATE_KEY",
    "TemplateCatalog",
    "build_config",
    "load_templates",
    "params_from_config",
]
