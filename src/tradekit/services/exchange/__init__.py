"""Exchanges that execute every strategy's orders: the paper simulator and ccxt venues."""

from tradekit.services.exchange.ccxt_exchange import CcxtClient, CcxtExchange
from tradekit.services.exchange.paper import PaperExchange

__all__ = ["CcxtClient", "CcxtExchange", "PaperExchange"]
