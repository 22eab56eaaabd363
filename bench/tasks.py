"""A bench-only job (loaded through ``PROCRASTINATE_IMPORT_PATHS`` in
bench/settings.py): it does nothing, so the jobs step of bench/run.py measures
the queue itself — defer, fetch, run in a worker thread, record the outcome —
apart from what a real task does."""

from __future__ import annotations

from procrastinate.contrib.django import app

BENCH_QUEUE = "bench"


@app.task(queue=BENCH_QUEUE, name="bench.noop")
def noop(*, n: int) -> int:
    """Nothing; a sync task like the mail tasks, so it runs in a worker thread."""
    return n
