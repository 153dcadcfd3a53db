"""Execution: carrying out a strategy's actions as orders and applying their fills."""
