"""Identifiers of orders and positions: how each is built from its strategy, and read back.

Every order and position id names its strategy, so a fill reported after a
restart (or by an exchange that echoes the client order id) maps back to the
strategy that sent the order.
"""

from __future__ import annotations

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


__all__ = ["ClientOrderId", "PositionId"]
