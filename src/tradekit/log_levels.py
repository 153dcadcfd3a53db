"""The log level names tradekit accepts, importable without loading the logging library
(the launcher's ``--help`` lists them)."""

LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
"""The level names ``configure_logging`` accepts (case-insensitive)."""
