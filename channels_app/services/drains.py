"""Drains: a queue table worked off in batches by one Celery task, woken once per burst.

Publishing one Celery task per row cost a third of a webhook acknowledgement and about a
millisecond of every reply's request, and running one task per row cost the worker its per-task
overhead and a claim, a load and a record per row (docs/performance.md, "Seventh session" and
"Ninth session"). A drain instead:

- is woken by `wake()`: the first caller sets a flag in the cache and queues the task; later
  callers see the flag and publish nothing;
- keeps the flag while it finds work, so rows committed meanwhile are claimed by its next look;
- clears the flag *before* its last look, so a row committed after that either sets the flag
  again (and queues another drain) or is found by that look;
- clears it on a full batch too (a backlog), so the next row queues a second drain to share the
  work: steps claim with FOR UPDATE SKIP LOCKED;
- after `limit` rows queues a successor, so other tasks get the worker too;
- may `linger` after a partial batch, so that rows arriving one by one are handled a few at a
  time: what a step costs whatever its size (a claim, a record, a connection) is then shared;
- lingering, may stay `idle` a while after its last work, looking every `linger`, so a steady
  trickle is taken row by row by the task already running instead of one task per row: a task
  costs the worker about 4 ms of CPU even when it finds nothing, mostly Celery's (the broker's
  delivery, ack and hand-over to the pool process), a look 0.2 ms (docs/performance.md,
  thirteenth session).

A wake whose task was never published heals itself when the flag expires; each queue also has a
periodic sweeper for rows no drain saw.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Drain:
    wake_key: str
    task: str  # dotted path of the Celery task that calls `run` (tasks import services: resolved late)
    wake_ttl_seconds: int = 60
    linger_setting: str = ""  # the setting (milliseconds) a worker's drain lingers after a partial batch
    idle_setting: str = ""  # the setting (milliseconds) a lingering drain goes on looking after its last work

    def linger_seconds(self, *, eager: bool) -> float:
        """How long `run` should linger: the setting's value in a worker; never when eager
        (without a broker the drain runs inside the request that woke it)."""
        if eager or not self.linger_setting:
            return 0.0
        return int(getattr(settings, self.linger_setting)) / 1000

    def idle_seconds(self) -> float:
        return int(getattr(settings, self.idle_setting)) / 1000 if self.idle_setting else 0.0

    def wake(self) -> None:
        """Make sure a drain task will see the rows committed so far."""
        if cache.add(self.wake_key, 1, timeout=self.wake_ttl_seconds):
            try:
                import_string(self.task).delay()
            except Exception:
                cache.delete(self.wake_key)  # the next caller tries again
                raise

    def run(self, step: Callable[[int], int], *, batch_size: int, limit: int, linger: float = 0.0,
            idle: float = 0.0) -> int:
        """Call `step(size)` (claim and handle up to `size` rows, return how many it claimed)
        until nothing is left or `limit` rows were handled; returns how many were. `linger`:
        seconds to wait after a partial batch before the next look (the flag held meanwhile).
        `idle` (with a linger): seconds to go on looking, every `linger` and the flag held, after
        the last look that found work, before ending."""
        done = 0
        flag_held = True
        last_work = time.monotonic()
        try:
            while done < limit:
                size = min(batch_size, limit - done)
                claimed = step(size)
                done += claimed
                if claimed:
                    last_work = time.monotonic()
                elif flag_held and linger and time.monotonic() - last_work < idle:
                    time.sleep(linger)  # a trickle: rows committed meanwhile see the flag and are ours
                    continue
                if flag_held and claimed in (0, size):
                    # Nothing was waiting: one last look follows. Or a backlog: a row arriving
                    # now queues a second drain to share it.
                    cache.delete(self.wake_key)
                    flag_held = False
                elif not claimed:
                    return done
                elif linger and claimed < size:
                    time.sleep(linger)
        except BaseException:
            if flag_held:
                cache.delete(self.wake_key)  # a failed drain must not silence the wakes until the flag expires
            raise
        if flag_held:
            cache.delete(self.wake_key)
        self.wake()  # the successor
        return done
