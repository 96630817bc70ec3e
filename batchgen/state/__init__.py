"""The state store: the single truth of a manifest's jobs, their transitions and attempts.

The rest of batchgen sees it through two protocols (``protocol.Store`` for the engine and
the outputs, ``protocol.ManifestStore`` for the commands) and opens it through
``backend.open_store``. SQLite is the one implementation (``store``, assembled from
``transitions``, ``queries``, ``runs`` and ``origins``, on ``sqlite``); the status machine and
migrations are ``schema``, how each job field is stored is ``columns`` (derived from the
``JobSpec``/``Job`` declarations), and ``location``/``registry`` say where a manifest's state
lives. Every transition is guarded and committed before the next paid step. The outputs are
projections of this store.
"""
