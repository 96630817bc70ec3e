"""When to poll: the latency a task takes, learnt as the run goes and kept between runs
(``latency``, ``latency_store``), and the poll plan built on it (``poll_plan``).

Pure decisions and one small file; no network, no state store.
"""
