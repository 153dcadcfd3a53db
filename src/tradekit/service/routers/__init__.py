"""The API's routes, one router per resource: ``bots``, ``templates`` (``/api/strategies``)
and ``engine`` (with health)."""
