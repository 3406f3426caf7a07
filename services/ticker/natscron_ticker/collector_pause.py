"""The cyclic garbage collector held off while a big burst is fired.

A burst's firings (specs parsed back from the book, run requests, events: a dozen or more
tracked objects per job) live long enough to reach the collector's oldest generation, and
with the loaded book frozen out of its sight (`watch.py`) they are most of what it looks
at. As they grow, full collections come again and again, each longer than the last: for
100,000 jobs, ten of them from 0.06 to 0.8 s, several seconds in all, each holding the
loop while the burst waits to be sent (bench/lateness.py). They find nothing to free: a
burst's objects go by reference counting once it is done. So the collector is off from
the start of a burst of `PAUSE_FROM` jobs or more until the last such burst running is
followed up, and as it was before after that.

What a burst leaves behind (its jobs' new states, the specs it parsed into the book's
cache) is frozen as the pause ends, as the loaded book is: the first collection after it
would otherwise look at all of it at once (0.5 s after 100,000 jobs). The few reference
cycles a burst leaves unreachable (8 objects for 100,000 jobs) are frozen with it, never
collected: a small, bounded cost per big burst. The cycle that would hold a whole burst
(an error kept as the outcome of its messages, whose traceback holds them) is not made:
`BulkPublisher` keeps such errors without their traceback.
"""

import contextlib
import gc
from collections.abc import Iterator

PAUSE_FROM = 10_000


class CollectorPause:
    def __init__(self) -> None:
        self._bursts = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def during(self, jobs: int) -> Iterator[None]:
        """Within: the collector is off if `jobs` is `PAUSE_FROM` or more."""
        if jobs < PAUSE_FROM:
            yield
            return
        if not self._bursts:
            self._was_enabled = gc.isenabled()
            gc.disable()
        self._bursts += 1
        try:
            yield
        finally:
            self._bursts -= 1
            if not self._bursts and self._was_enabled:
                gc.freeze()
                gc.enable()


COLLECTOR_PAUSE = CollectorPause()
