"""The journal: the persistent record of every strategy, and its tables."""
