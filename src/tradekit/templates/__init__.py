"""Strategy templates: the bundled strategy kinds and the user's, with typed parameters.

A template is a strategy with some values left as parameters. Each parameter's
type, limits and choices are read from the models that validate strategy
files, so a form built from a template and a strategy file never disagree.
"""

from tradekit.templates.catalog import (
    TEMPLATE_KEY,
    TemplateCatalog,
    build_config,
    load_templates,
    params_from_config,
)
from tradekit.templates.loading import (
    TEMPLATES_FOLDER_NAME,
    bundled_templates,
    load_template_file,
    templates_folder_beside,
)
from tradekit.templates.models import (
    ParameterDefinition,
    TemplateDetail,
    TemplateFile,
    TemplateSummary,
)
from tradekit.templates.template import PARAMS_KEY, StrategyTemplate, strategy_id_from_name

__all__ = [
    "PARAMS_KEY",
    "TEMPLATES_FOLDER_NAME",
    "TEMPLATE_KEY",
    "ParameterDefinition",
    "StrategyTemplate",
    "TemplateCatalog",
    "TemplateDetail",
    "TemplateFile",
    "TemplateSummary",
    "build_config",
    "bundled_templates",
    "load_template_file",
    "load_templates",
    "params_from_config",
    "strategy_id_from_name",
    "templates_folder_beside",
]
