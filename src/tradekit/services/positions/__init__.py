"""Positions: one strategy's virtual positions and P&L, and the state kept for snapshots."""
