"""The account's rate limit: the throttle every request passes, and the windows it shares.

``throttle`` paces requests within the account's limit and honours the vendor's rate-limit
hints; ``window`` is the shared record of requests sent (``window_sqlite`` for runs on one
host, ``window_redis`` for several); ``limiter`` chooses the window from ``--limiter``.
Imports: the engine's base (config, errors) and the providers' rate-limit hints only.
"""
