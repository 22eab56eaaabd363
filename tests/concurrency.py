"""Run code from many threads released at the same moment."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.db import connection


def run_at_once(count: int, call: Callable[[int], object]) -> list:
    """Call ``call(i)`` for i in range(count), each in its own thread, all released
    together by a barrier; return the results in order (an exception in a thread
    is raised here). Each thread uses, and then closes, its own DB connection, so
    use ``django_db(transaction=True)``."""
    barrier = threading.Barrier(count)

    def worker(i):
        try:
            barrier.wait(timeout=30)
            return call(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))
