"""Group commit of a run's transitions: the rows that move together share one commit.

Every transition is committed before the step that depends on it (a submit's intent before its
POST, its task id before the task is polled, a video's URLs before it is downloaded). Done one
by one, a burst of submits cost two fsync'd commits per row, on the event loop: at the pro
tier's first minute (970 submits) that was seconds of wall time during which no request went
out, and the largest share of the runner's CPU after the HTTP requests.

:meth:`CommitGroup.move` queues one transition and waits for its commit. While other submits
are under way (``busy``: their intents and task ids will ask for a commit within
milliseconds), the commit is made ``max_wait`` seconds after the first move of the group was
asked (PostgreSQL's ``commit_delay`` with its ``commit_siblings``: 2 ms, against an fsync of
3-10 ms on a shared virtual disk), with every transition asked meanwhile, or at once when the
group reaches ``max_moves``. Otherwise the move is committed at once, before ``move`` first
yields, exactly as a single transition was: a lone submit's POST then leaves in the same turn
of the event loop as its slot was given, ahead of any request given a slot after it. One
``transition_many`` commits them all (fsynced when any of them needs it), and each caller
resumes with its own answer: done, or its own TransitionError. (Waiting instead for a turn
of the event loop that adds nothing was tried: answers and submits reach the loop unevenly,
so such a turn came after one to three moves.)

What this keeps true, row by row:

* **the intent before the request**: a submit's POST goes out only after the commit that
  holds its SUBMITTING has returned (fsynced);
* **the task id as it returns**: the SUBMITTED move is queued the moment the answer is parsed
  and committed on the next group, within ``max_wait`` (a few milliseconds); nothing is done
  with the task before. A kill in between leaves the row SUBMITTING, which the next run reports
  as unknown (maybe charged) exactly as a kill during the POST would: never sent again silently;
* a caller cancelled while its move waits takes it out of the group (nothing is written for
  it); one cancelled after the commit finds its move made (the submit stage moves such a row
  back to pending: its POST never left).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any

from batchgen.errors import TransitionError
from batchgen.models import JobStatus
from batchgen.state.protocol import Store
from batchgen.state.schema import Attempt, Move

__all__ = ["MAX_MOVES", "MAX_WAIT", "CommitGroup"]

log = logging.getLogger(__name__)

_Hook = Callable[[], None] | None

MAX_WAIT = 0.002  # seconds from a group's first move to its commit
MAX_MOVES = 512  # moves in one commit at most


class CommitGroup:
    """The pending transitions of one store, committed together (see the module's docstring).

    ``max_wait``: seconds from a group's first move to its commit while ``busy()`` (default:
    always; the dispatcher asks its throttle); ``max_moves``: a group this big is committed at
    once; ``commits`` counts the commits made, for tests and figures.
    """

    def __init__(
        self, store: Store, *, max_wait: float = MAX_WAIT, max_moves: int = MAX_MOVES
    ) -> None:
        self.store = store
        self.max_wait = max_wait
        self.max_moves = max_moves
        self._queued: list[tuple[Move, asyncio.Future[str | None], _Hook]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.busy: Callable[[], bool] = lambda: True
        #: called once after each commit, after its moves' ``on_made`` hooks and before any
        #: caller resumes (the per-user record of generated requests writes what they told it
        #: in one transaction); must not raise
        self.after_commit: Callable[[], None] | None = None
        self.commits = 0

    async def move(
        self,
        key: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        attempt: Attempt | None = None,
        keep: bool = False,
        on_made: _Hook = None,
        **fields: Any,
    ) -> None:
        """Transition ``key`` as ``Store.transition`` would, in the next group commit.

        ``keep``: the move is committed even if the caller is cancelled while it waits (a
        task id in hand must reach the state); otherwise a cancelled caller's move is dropped.
        ``on_made`` is called as the move is committed (the run's counters: they then agree
        with the state even when the caller never resumes).
        Raises TransitionError when the move is refused, and whatever the commit raised
        (StateError, DiskFullError) when it failed: then none of the group was made.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()
        self._queued.append((Move(key, to, fields, expect, attempt), done, on_made))
        if len(self._queued) >= self.max_moves or not self.busy():
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait, self._due)
        refusal = await (asyncio.shield(done) if keep else done)
        if refusal is not None:
            raise TransitionError(refusal)

    def _due(self) -> None:
        self._timer = None
        self.flush()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def flush(self) -> None:
        """Commit every queued move now (skipping those whose caller was cancelled)."""
        self._cancel_timer()
        queued, self._queued = self._queued, []
        live = [item for item in queued if not item[1].done()]
        if not live:
            return
        try:
            answers = self.store.transition_many([move for move, _, _ in live])
        except Exception as exc:  # the commit failed: none of the group was made
            for _, done, _ in live:
                done.set_exception(exc)
                done.exception()  # its caller raises it; a cancelled one is not warned about
            return
        self.commits += 1
        made = list(zip(live, answers, strict=True))
        for (_, _, on_made), answer in made:
            if answer is None and on_made is not None:
                on_made()
        if self.after_commit is not None:
            self.after_commit()
        for (_, done, _), answer in made:
            if not done.done():
                done.set_result(answer)
