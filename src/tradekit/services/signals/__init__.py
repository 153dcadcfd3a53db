"""Signals: analyzers that turn indicator values into signals, and where they could fire."""
