"""Service classes: plain objects that take their collaborators in ``__init__``."""
