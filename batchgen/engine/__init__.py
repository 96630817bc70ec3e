"""The run engine: the dispatcher (submit -> poll -> download), the account-wide throttle,
the poll planner, the retry policy, downloads and progress.

It reads and writes jobs through the state store and talks to the vendor through a provider;
it knows nothing of spreadsheets or of the output files.
"""
