"""Outputs, all projections of the state store: the results sheets (XLSX/CSV), the summary,
the HTML gallery, and the run-end notification.
"""
