"""Fuzzing strategy validation: a randomly broken bundled strategy is either valid or a ConfigError.

Each example starts from one bundled strategy merged under the bundled
``strategy_defaults``, breaks it at one JSON path and loads it. The error must
be a ``ConfigError`` whose message points at the broken path or a section
enclosing it.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from tradekit.config import StrategyConfig, TradekitSettings, deep_merge, load_strategy_config
from tradekit.errors import ConfigError, ConfigProblem

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CONFIG = REPO_ROOT / "config.json"
BUNDLED_STRATEGIES = REPO_ROOT / "strategies"

JsonPath = tuple[str | int, ...]


def _merged_bundled_strategies() -> dict[str, dict[str, Any]]:
    defaults = json.loads(BUNDLED_CONFIG.read_text(encoding="utf-8"))["strategy_defaults"]
    return {
        path.stem: deep_merge(defaults, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(BUNDLED_STRATEGIES.glob("*.json"))
    }


MERGED_STRATEGIES = _merged_bundled_strategies()

# Validators on one section that read a sibling: changing the key on the left can make the
# section on the right complain (StrategyConfig._mtf_is_higher, ._risk_sizing_has_stop).
CROSS_FIELD_SECTIONS: dict[str, tuple[str, ...]] = {"timeframe": ("mtf",), "entry": ("exit",)}

OUT_OF_RANGE_NUMBERS = [-1, 0, -0.001, 100.5, 101, 1_000_000_000, 10**18, 1e300]


def render_path(path: JsonPath) -> str:
    """``('indicators', 0, 'params')`` -> ``indicators[0].params``, as error messages show it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def walk(value: Any, path: JsonPath = ()) -> list[tuple[JsonPath, Any]]:
    """Every (path, value) inside ``value``, the root included."""
    found = [(path, value)]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(walk(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(walk(child, (*path, index)))
    return found


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def parent_of(document: dict[str, Any], path: JsonPath) -> Any:
    container: Any = document
    for part in path[:-1]:
        container = container[part]
    return container


@dataclass(frozen=True)
class Mutation:
    """One bundled strategy broken at ``path`` by ``kind``; ``document`` is the result."""

    strategy: str
    kind: str
    path: JsonPath
    document: dict[str, Any]
    inserted_container: bool


scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6)
negative_numbers = st.integers(max_value=-1) | st.floats(
    max_value=-1e-9, allow_nan=False, allow_infinity=False
)
huge_numbers = st.sampled_from([10**12, 10**30, 10**400, 1e300, 1.7e308])
replacements_by_type: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=12),
    "negative number": negative_numbers,
    "huge number": huge_numbers,
    "null": st.none(),
    "list": st.lists(scalars, max_size=3),
    "dict": st.dictionaries(st.text(max_size=6), scalars, max_size=3),
}
replacement_json_types = {
    "string": "str",
    "negative number": "number",
    "huge number": "number",
    "null": "null",
    "list": "list",
    "dict": "dict",
}
unknown_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(sorted(MERGED_STRATEGIES)))
    document = copy.deepcopy(MERGED_STRATEGIES[name])
    everything = walk(document)
    kind = draw(st.sampled_from(["delete", "replace", "unknown key", "out of range"]))
    inserted_container = False
    if kind == "delete":
        path = draw(st.sampled_from([p for p, _ in everything if p and isinstance(p[-1], str)]))
        del parent_of(document, path)[path[-1]]
    elif kind == "replace":
        path, current = draw(st.sampled_from([(p, v) for p, v in everything if p]))
        options = [t for t, j in replacement_json_types.items() if j != json_type(current)]
        new_type = draw(st.sampled_from(options))
        new_value = draw(replacements_by_type[new_type])
        parent_of(document, path)[path[-1]] = new_value
        inserted_container = isinstance(new_value, dict | list)
    elif kind == "unknown key":
        dict_path, section = draw(
            st.sampled_from([(p, v) for p, v in everything if isinstance(v, dict)])
        )
        key = draw(unknown_keys.filter(lambda k: k not in section))
        path = (*dict_path, key)
        section[key] = draw(scalars)
    else:
        numbers = [p for p, v in everything if p and json_type(v) == "number"]
        path = draw(st.sampled_from(numbers))
        parent_of(document, path)[path[-1]] = draw(st.sampled_from(OUT_OF_RANGE_NUMBERS))
    return Mutation(name, kind, path, document, inserted_container)


def accepted_paths(mutation: Mutation) -> set[str]:
    """The rendered paths an error about ``mutation`` may name.

    These are the mutated path, every section enclosing it, and the sections whose
    validators read the mutated top-level key.
    """
    path = mutation.path
    accepted = {render_path(path[:length]) for length in range(1, len(path) + 1)}
    accepted.update(CROSS_FIELD_SECTIONS.get(str(path[0]), ()))
    return accepted


# pydantic's names for the members of ``ParamValue`` (float | int | bool | str). A dict put
# where an indicator parameter belongs is currently reported at '<path>.float', '<path>.int',
# ... instead of '<path>'; a strict xfail in test_config_strategy.py (TestIndicatorKeys) pins
# that bug down, and these paths are let through here only in that exact shape.
UNION_MEMBER_TAGS = ("float", "int", "bool", "str")


def is_inside_inserted_value(problem: ConfigProblem, mutation: Mutation) -> bool:
    """A problem about the contents of a dict or list put in place of a value.

    The path must lead to something in the mutated document, or be a required key
    reported missing from a dict that is there.
    """
    mutated = render_path(mutation.path)
    path = problem.path or ""
    if not (mutation.inserted_container and path.startswith((f"{mutated}.", f"{mutated}["))):
        return False
    present = {render_path(json_path) for json_path, _ in walk(mutation.document)}
    if path in present:
        return True
    parent, _, key = path.rpartition(".")
    if parent in present and problem.message.startswith(f"required key '{key}' is missing"):
        return True
    return mutation.path[0] == "indicators" and parent == mutated and key in UNION_MEMBER_TAGS


def names_mutation(problem: ConfigProblem, mutation: Mutation) -> bool:
    """True when ``problem`` is about the mutated path, a section enclosing it, or its contents."""
    if problem.path is None:
        return False
    return problem.path in accepted_paths(mutation) or is_inside_inserted_value(problem, mutation)


def load_mutation(
    mutation: Mutation, settings: TradekitSettings
) -> tuple[Path, StrategyConfig | ConfigError]:
    """Write the mutated document to a temporary file and load it; return the file and outcome."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{mutation.strategy}.json"
        path.write_text(json.dumps(mutation.document), encoding="utf-8")
        try:
            return path, load_strategy_config(path, settings)
        except ConfigError as exc:
            return path, exc


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TradekitSettings:
    """Settings with nothing but defaults: no TRADEKIT_* variable and no ``.env`` to read."""
    for name in [name for name in os.environ if name.upper().startswith("TRADEKIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = TradekitSettings()
    assert settings.strategy_defaults == {}
    return settings


class TestMergedBundledStrategies:
    @pytest.mark.parametrize("name", sorted(MERGED_STRATEGIES))
    def test_unmutated_merged_strategy_validates(
        self, name: str, clean_settings: TradekitSettings
    ) -> None:
        mutation = Mutation(name, "none", (), MERGED_STRATEGIES[name], inserted_container=False)
        _, outcome = load_mutation(mutation, clean_settings)
        assert not isinstance(outcome, ConfigError), str(outcome)
        assert outcome.strategy_id == name


class TestKnownMutations:
    """Hand-picked breakages, so the fuzzed property is seen to name the right paths."""

    @pytest.mark.parametrize(
        ("strategy", "path", "value", "expected_path"),
        [
            (
                "rsi-btc-1h",
                ("indicators", 0, "params", "length"),
                [14],
                "indicators[0].params.length",
            ),
            ("rsi-btc-1h", ("exit", "stop_loss_pct"), -1, "exit.stop_loss_pct"),
            (
                "bbands-eth-1h",
                ("filters", "volatility", "min_atr_pct"),
                10**9,
                "filters.volatility",
            ),
            ("ema-cross-sol-15m", ("exit", "stop_loss_pct"), None, "exit"),
            ("ema-cross-sol-15m", ("timeframe",), "1d", "mtf"),
            ("macd-dca-btc-4h", ("dca", "safety_orders"), "four", "dca.safety_orders"),
        ],
    )
    def test_replacement_error_names_expected_path(
        self,
        clean_settings: TradekitSettings,
        strategy: str,
        path: JsonPath,
        value: Any,
        expected_path: str,
    ) -> None:
        document = copy.deepcopy(MERGED_STRATEGIES[strategy])
        parent_of(document, path)[path[-1]] = value
        mutation = Mutation(strategy, "replace", path, document, inserted_container=False)
        file_path, outcome = load_mutation(mutation, clean_settings)
        assert isinstance(outcome, ConfigError)
        assert f"{file_path}: {expected_path}: " in str(outcome)
        assert expected_path in accepted_paths(mutation)

    def test_unknown_key_names_its_full_path(self, clean_settings: TradekitSettings) -> None:
        document = copy.deepcopy(MERGED_STRATEGIES["ema-cross-sol-15m"])
        document["exit"]["partial_take_profits"][0]["close_pcts"] = 10
        path: JsonPath = ("exit", "partial_take_profits", 0, "close_pcts")
        mutation = Mutation("ema-cross-sol-15m", "unknown key", path, document, False)
        file_path, outcome = load_mutation(mutation, clean_settings)
        assert isinstance(outcome, ConfigError)
        assert str(outcome) == (
            f"{file_path}: exit.partial_take_profits[0].close_pcts: "
            "unknown key 'close_pcts'; did you mean 'close_pct'?"
        )

    def test_unrelated_section_is_not_accepted(self) -> None:
        mutation = Mutation("rsi-btc-1h", "delete", ("exit", "stop_loss_pct"), {}, False)
        assert not names_mutation(ConfigProblem("bad", path="entry.sizing"), mutation)
        assert not names_mutation(ConfigProblem("bad", path="exit.take_profit_pct"), mutation)
        assert names_mutation(ConfigProblem("bad", path="exit"), mutation)

    def test_path_below_inserted_value_must_exist_in_the_document(self) -> None:
        document = {"exit": {"stop_loss_pct": {"value": 1}}}
        mutation = Mutation("rsi-btc-1h", "replace", ("exit", "stop_loss_pct"), document, True)
        assert names_mutation(ConfigProblem("bad", path="exit.stop_loss_pct.value"), mutation)
        assert not names_mutation(ConfigProblem("bad", path="exit.stop_loss_pct.other"), mutation)


@pytest.mark.slow
class TestFuzzedStrategies:
    @hypothesis.settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(mutation=mutations())
    def test_mutated_strategy_validates_or_names_the_mutated_path(
        self, mutation: Mutation, clean_settings: TradekitSettings
    ) -> None:
        file_path, outcome = load_mutation(mutation, clean_settings)
        hypothesis.event(f"{mutation.kind}: {type(outcome).__name__}")
        if not isinstance(outcome, ConfigError):
            return
        assert outcome.problems, "a ConfigError must carry at least one problem"
        message = str(outcome)
        named = [
            problem
            for problem in outcome.problems
            if problem.source == str(file_path) and names_mutation(problem, mutation)
        ]
        assert named, (
            f"{mutation.kind} at {render_path(mutation.path)!r} of {mutation.strategy}; "
            f"accepted {sorted(accepted_paths(mutation))}; got:\n{message}"
        )
        for problem in named:
            assert f"{file_path}: {problem.path}: " in message
