"""Manifests: read CSV/TSV/XLSX into rows, validate them with spreadsheet row numbers, and give
each row a stable identity key. No network, no state.
"""
