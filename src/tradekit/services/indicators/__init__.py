"""Indicators: the pandas-ta backend, the catalog, the shared cache, the look-ahead probe."""
