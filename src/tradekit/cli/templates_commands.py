"""``tradekit templates``: the strategy templates (bundled and the user's) and their parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tradekit.cli.app import app, out, run_guarded
from tradekit.templates import (
    ParameterDefinition,
    TemplateCatalog,
    load_templates,
    templates_folder_beside,
)
from tradekit.terminal import plain_text, print_table, results_table

templates_app = typer.Typer(
    help="List the strategy templates (bundled and the user's) and their parameters.",
    no_args_is_help=True,
)
app.add_typer(templates_app, name="templates")

DEFAULT_TEMPLATES = templates_folder_beside(Path("strategies"))

TemplatesOption = Annotated[
    Path | None,
    typer.Option(
        "--templates",
        "-t",
        help=f"Folder of user template files (*.json). Default: ./{DEFAULT_TEMPLATES} when it "
        "exists.",
        file_okay=False,
    ),
]


def _catalog(folder: Path | None) -> TemplateCatalog:
    if folder is None:
        return load_templates(DEFAULT_TEMPLATES)
    return load_templates(folder, required=True)


def _say(text: str) -> None:
    out.print(plain_text(text), markup=False, highlight=False)


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _limits(definition: ParameterDefinition) -> str:
    if definition.choices is not None:
        return " | ".join(str(choice) for choice in definition.choices)
    low = definition.minimum
    high = definition.maximum
    parts = []
    if low is not None:
        parts.append(f"{'>' if definition.exclusive_minimum else '>='} {_number(low)}")
    if high is not None:
        parts.append(f"{'<' if definition.exclusive_maximum else '<='} {_number(high)}")
    if definition.nullable:
        parts.append("or empty")
    return ", ".join(parts)


@templates_app.command("list")
def list_command(templates: TemplatesOption = None) -> None:
    """One line per template: its id, name, source and parameters."""
    catalog = run_guarded(lambda: _catalog(templates))
    rows = [
        (summary.template_id, summary.name, summary.source, ", ".join(summary.parameter_names))
        for summary in (template.summary() for template in catalog.templates)
    ]
    headers = ("template", "name", "source", "parameters")
    print_table(out, results_table("Strategy templates", headers, rows, text_columns=4))


@templates_app.command("show")
def show_command(
    template_id: Annotated[str, typer.Argument(help="The template id, e.g. 'rsi'.")],
    templates: TemplatesOption = None,
) -> None:
    """A template's description and its parameters: type, default, limits, unit and help."""
    catalog = run_guarded(lambda: _catalog(templates))
    template = run_guarded(lambda: catalog.get(template_id))
    detail = template.detail()
    _say(f"{detail.template_id}: {detail.name} ({detail.source})")
    _say(detail.description)
    rows = [
        (
            definition.name,
            definition.type,
            "" if definition.default is None else str(definition.default),
            _limits(definition),
            definition.unit or "",
            definition.description,
        )
        for definition in detail.parameters
    ]
    headers = ("parameter", "type", "default", "limits", "unit", "description")
    print_table(out, results_table("Parameters", headers, rows, text_columns=6))
