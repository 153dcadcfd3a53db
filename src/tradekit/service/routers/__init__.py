"""The API's routes, one router per resource: ``bots`` and ``engine`` (with health)."""
