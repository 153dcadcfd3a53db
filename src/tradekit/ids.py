"""Identifiers of orders and positions: how each is built from its strategy, and read back.

Every order and position id names its strategy, so a fill reported after a
restart (or by an exchange that echoes the client order id) maps back to the
strategy that sent the order.

A venue limits the length and characters of the client order ids it accepts, so
what a real order carries is a ``VenueOrderId``: ``"TK{strategy_id}-{n}"`` when
the strategy id fits (readable, and reversible without any other knowledge), or
``"TH{tag}N{n}"`` with ``tag`` a short hash of the strategy id, which a
``StrategyIdResolver`` built from the registry's strategy ids maps back. Strategy
ids are lowercase, so the uppercase prefixes never clash with them. The paper
exchange keeps using the ``ClientOrderId`` text itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

_SEPARATOR = "-"
_POSITION_INFIX = "-pos-"


class ClientOrderId(NamedTuple):
    """The id a strategy gives its ``n``-th order: ``"{strategy_id}-{n}"``, ``n`` from 1."""

    strategy_id: str
    number: int

    def __str__(self) -> str:
        return f"{self.strategy_id}{_SEPARATOR}{self.number}"

    @classmethod
    def parse(cls, order_id: str) -> ClientOrderId:
        """Read back an id built by ``str(ClientOrderId(...))``; ``ValueError`` for any other.

        The number follows the last ``-``, so strategy ids may contain ``-`` and digits.
        """
        strategy_id, separator, number = order_id.rpartition(_SEPARATOR)
        if not separator or not strategy_id or not number.isdecimal() or int(number) < 1:
            raise ValueError(
                f"order id {order_id!r} is not '<strategy_id>-<n>' with n >= 1, "
                "so it was not made by a tradekit strategy"
            )
        return cls(strategy_id, int(number))


class PositionId(NamedTuple):
    """The id of a strategy's ``n``-th position: ``"{strategy_id}-pos-{n}"``, ``n`` from 1."""

    strategy_id: str
    number: int

    def __str__(self) -> str:
        return f"{self.strategy_id}{_POSITION_INFIX}{self.number}"

    @classmethod
    def parse(cls, position_id: str) -> PositionId:
        """Read back an id built by ``str(PositionId(...))``; ``ValueError`` for any other."""
        strategy_id, infix, number = position_id.rpartition(_POSITION_INFIX)
        if not infix or not strategy_id or not number.isdecimal() or int(number) < 1:
            raise ValueError(
                f"position id {position_id!r} is not '<strategy_id>-pos-<n>' with n >= 1, "
                "so it was not made by a tradekit strategy"
            )
        return cls(strategy_id, int(number))


_READABLE_PREFIX = "TK"
_TAGGED_PREFIX = "TH"
_TAG_LENGTH = 10
_TAGGED_PATTERN = re.compile(rf"^{_TAGGED_PREFIX}([0-9a-f]{{{_TAG_LENGTH}}})N([1-9][0-9]*)$")
_NUMBER_DIGITS_RESERVED = 8
"""Digits kept free for the order number when deciding whether a strategy id fits as it is,
so a strategy's ids keep one form for its first 10**8 - 1 orders."""


@dataclass(frozen=True, slots=True)
class VenueIdRules:
    """What a venue accepts as a client order id: at most ``max_length`` characters, each
    matched by the regular-expression character class body ``allowed``."""

    max_length: int
    allowed: str

    def accepts(self, text: str) -> bool:
        return 0 < len(text) <= self.max_length and (
            re.fullmatch(f"[{self.allowed}]+", text) is not None
        )


DEFAULT_VENUE_ID_RULES = VenueIdRules(32, "A-Za-z0-9_-")
"""For venues tradekit knows nothing specific of: 32 letters, digits, ``_`` or ``-``."""

# From each venue's API documentation (ccxt passes clientOrderId through unchanged).
_VENUE_ID_RULES: dict[str, VenueIdRules] = {
    "binance": VenueIdRules(36, ".A-Z:/a-z0-9_-"),
    "binanceus": VenueIdRules(36, ".A-Z:/a-z0-9_-"),
    "binanceusdm": VenueIdRules(36, ".A-Z:/a-z0-9_-"),
    "binancecoinm": VenueIdRules(36, ".A-Z:/a-z0-9_-"),
    "okx": VenueIdRules(32, "A-Za-z0-9"),
}


def venue_id_rules(exchange_id: str) -> VenueIdRules:
    """The client order id rules of ccxt venue ``exchange_id`` (conservative when unknown)."""
    return _VENUE_ID_RULES.get(exchange_id, DEFAULT_VENUE_ID_RULES)


def strategy_tag(strategy_id: str) -> str:
    """The short stable tag standing for ``strategy_id`` in ids too long to hold it."""
    return hashlib.sha256(strategy_id.encode()).hexdigest()[:_TAG_LENGTH]


class VenueOrderId(NamedTuple):
    """A client order id as a venue carries it: the strategy (its id, or its tag when
    ``tagged``) and the order's number within that strategy."""

    strategy_key: str
    number: int
    tagged: bool

    @classmethod
    def encode(cls, order_id: ClientOrderId, rules: VenueIdRules = DEFAULT_VENUE_ID_RULES) -> str:
        """The text ``order_id`` is sent to a venue with ``rules`` as; ``ValueError`` if none fits.

        The strategy id goes in as it is when it leaves room for an 8-digit number
        and the venue accepts its characters; otherwise its tag does.
        """
        strategy_id, number = order_id
        if number < 1:
            raise ValueError(f"order number must be >= 1, got {number}")
        readable = f"{_READABLE_PREFIX}{strategy_id}{_SEPARATOR}{number}"
        room = len(_READABLE_PREFIX) + len(strategy_id) + 1 + _NUMBER_DIGITS_RESERVED
        if room <= rules.max_length and rules.accepts(readable):
            return readable
        tagged = f"{_TAGGED_PREFIX}{strategy_tag(strategy_id)}N{number}"
        if not rules.accepts(tagged):
            raise ValueError(
                f"order {order_id} cannot be written as a client order id of at most "
                f"{rules.max_length} characters of [{rules.allowed}] (tried {tagged!r})"
            )
        return tagged

    @classmethod
    def parse(cls, text: str) -> VenueOrderId:
        """Read back a text made by ``encode``; ``ValueError`` for any other."""
        tagged = _TAGGED_PATTERN.match(text)
        if tagged is not None:
            return cls(tagged.group(1), int(tagged.group(2)), tagged=True)
        if text.startswith(_READABLE_PREFIX):
            try:
                strategy_id, number = ClientOrderId.parse(text[len(_READABLE_PREFIX) :])
            except ValueError:
                pass
            else:
                if _STRATEGY_ID_PATTERN.fullmatch(strategy_id):
                    return cls(strategy_id, number, tagged=False)
        raise ValueError(f"client order id {text!r} was not made by tradekit")


_STRATEGY_ID_PATTERN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


class StrategyIdResolver:
    """Maps venue client order ids back to strategy ids, knowing every strategy that may
    have sent one (the registry's, removed ones included); built per run or command."""

    def __init__(self, strategy_ids: Iterable[str]) -> None:
        self._known = frozenset(strategy_ids)
        self._by_tag: dict[str, str] = {}
        for strategy_id in sorted(self._known):
            tag = strategy_tag(strategy_id)
            other = self._by_tag.setdefault(tag, strategy_id)
            if other != strategy_id:
                raise ValueError(
                    f"strategies {other!r} and {strategy_id!r} share the order id tag {tag!r}; "
                    "rename one of them"
                )

    def resolve(self, venue_id: VenueOrderId) -> ClientOrderId | None:
        """The order ``venue_id`` stands for, or ``None`` when its strategy is not known."""
        if venue_id.tagged:
            strategy_id = self._by_tag.get(venue_id.strategy_key)
        else:
            strategy_id = venue_id.strategy_key if venue_id.strategy_key in self._known else None
        return None if strategy_id is None else ClientOrderId(strategy_id, venue_id.number)


__all__ = [
    "DEFAULT_VENUE_ID_RULES",
    "ClientOrderId",
    "PositionId",
    "StrategyIdResolver",
    "VenueIdRules",
    "VenueOrderId",
    "strategy_tag",
    "venue_id_rules",
]
