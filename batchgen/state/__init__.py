"""The state store: the single truth of a manifest's jobs, their transitions and attempts.

SQLite is the implementation; every transition is guarded and committed before the next paid
step. The outputs are projections of this store.
"""
