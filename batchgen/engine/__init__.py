"""The run engine: the dispatcher and its stages (submit -> poll -> download), the
account-wide throttle, the poll planner, the one retry policy, downloads and progress.

It reads and writes jobs through the state store's protocol and talks to the vendor through a
provider's protocol; it knows nothing of spreadsheets, of the output files or of SQLite.
"""
