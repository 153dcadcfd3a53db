"""The one rule deciding what each strategy state allows, and the transitions between states."""

from __future__ import annotations

import pytest

from tradekit.errors import StrategyError
from tradekit.services.journal.store import StrategyStatus
from tradekit.strategy_state import (
    Permissions,
    StrategyState,
    may_open_position,
    permissions,
    state_after_enable,
    state_after_resume,
    state_for_config,
)

ACTIVE, DISABLED = StrategyState.ACTIVE, StrategyState.DISABLED
QUARANTINED, REMOVED = StrategyState.QUARANTINED, StrategyState.REMOVED


def test_the_journal_and_the_engine_share_one_enum() -> None:
    assert StrategyStatus is StrategyState
    assert [state.value for state in StrategyState] == [
        "active",
        "disabled",
        "removed",
        "quarantined",
    ]


@pytest.mark.parametrize("state", list(StrategyState))
def test_only_an_active_strategy_with_entries_not_halted_may_open(state: StrategyState) -> None:
    assert may_open_position(state, entries_halted=False) is (state is ACTIVE)
    assert may_open_position(state, entries_halted=True) is False


def test_permissions_follow_the_rule() -> None:
    assert permissions(ACTIVE, False) == Permissions(signals=True, entries=True)
    assert permissions(ACTIVE, True) == Permissions(signals=True, entries=False)
    for state in (DISABLED, QUARANTINED, REMOVED):
        assert permissions(state, False) == Permissions(signals=False, entries=False)


def test_a_config_disables_or_activates_but_never_lifts_a_quarantine() -> None:
    assert state_for_config(None, enabled=True) is ACTIVE
    assert state_for_config(None, enabled=False) is DISABLED
    assert state_for_config(DISABLED, enabled=True) is ACTIVE
    assert state_for_config(QUARANTINED, enabled=True) is QUARANTINED
    assert state_for_config(QUARANTINED, enabled=False) is DISABLED


def test_enable_and_resume_transitions() -> None:
    assert state_after_enable("a", DISABLED) is ACTIVE
    assert state_after_enable("a", ACTIVE) is ACTIVE
    with pytest.raises(StrategyError, match="'a' is quarantined; use resume"):
        state_after_enable("a", QUARANTINED)
    with pytest.raises(StrategyError, match="'a' is removed"):
        state_after_enable("a", REMOVED)
    assert state_after_resume("a", QUARANTINED) is ACTIVE
    with pytest.raises(StrategyError, match="'a' is disabled, not quarantined"):
        state_after_resume("a", DISABLED)
