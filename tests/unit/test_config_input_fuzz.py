"""Fuzzing configuration input: any base config text and any ``TRADEKIT_*`` variables either
load or raise ``ConfigError``; nothing else escapes and nothing hangs."""

from __future__ import annotations

from pathlib import Path

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from tradekit.config import load_settings
from tradekit.errors import ConfigError

pytestmark = pytest.mark.usefixtures("clean_environment")

SECTION_NAMES = ["ENGINE", "EXCHANGE", "RISK", "STORAGE", "LOGGING", "STRATEGY_DEFAULTS", ""]
FIELD_NAMES = ["FEE_BPS", "KIND", "CCXT", "MAX_TOTAL_EXPOSURE", "LEVEL", "CAPITAL", "", "X"]
VALUES = st.sampled_from(
    ["", "3", "-1", "inf", "nan", "1e999", "{", "[]", "{}", '{"a": NaN}', "not json", "\udcff"]
) | st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=8)
variable_names = st.builds(
    lambda parts: "TRADEKIT_" + "__".join(parts),
    st.lists(st.sampled_from(SECTION_NAMES + FIELD_NAMES), min_size=1, max_size=4),
)
json_scalars = st.sampled_from(
    ["null", "true", "1", "-1", "1e308", "1e999", "NaN", "Infinity", '""', '"\\ud800"', "[]", "{}"]
)
json_keys = st.sampled_from(
    ["", "engine", "exchange", "fee_bps", "kind", "risk", "logging", "json_path", "level", "x"]
)


def config_error_of(path: Path | None) -> ConfigError | None:
    """Load settings; the ``ConfigError`` raised, or ``None``. Anything else fails the test."""
    try:
        load_settings(path, env_file=None)
    except ConfigError as exc:
        return exc
    return None


@st.composite
def json_documents(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 3 or draw(st.booleans()):
        return draw(json_scalars)
    keys = draw(st.lists(json_keys, max_size=3))
    members = [f'"{key}": {draw(json_documents(depth + 1))}' for key in keys]
    return "{" + ", ".join(members) + "}"


class TestFuzzedSettings:
    @hypothesis.settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(variables=st.dictionaries(variable_names, VALUES, max_size=3))
    def test_any_variables_load_or_raise_config_error(
        self, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
    ) -> None:
        with monkeypatch.context() as patch:
            for name, value in variables.items():
                patch.setenv(name, value)
            error = config_error_of(path=None)
        assert error is None or error.problems

    @hypothesis.settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(document=json_documents())
    def test_any_base_config_loads_or_raises_config_error(
        self, tmp_path: Path, document: str
    ) -> None:
        path = tmp_path / "config.json"
        path.write_text(document, encoding="utf-8")
        error = config_error_of(path)
        assert error is None or str(path) in str(error)
