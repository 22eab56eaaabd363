"""Test-only tasks for the real workers of tests/core/test_jobs_worker.py.

Only those workers import this module (``PROCRASTINATE_IMPORT_PATHS`` in
config/settings/test.py, set when ``JOBS_TEST_WORKER_DB`` is); the test process
defers these tasks by name. Each task appends a line to a file the test names,
so the test sees what ran, where and how often, without a table.
"""

from __future__ import annotations

import os
import time

from procrastinate.contrib.django import app

TEST_QUEUE = "tests"
# Every 2 seconds (croniter's sixth field is the seconds): a few ticks in a
# few seconds, with room for a worker that lags a little.
TICK_CRON = "* * * * * */2"


def _append(path: str, line: str) -> None:
    with open(path, "a") as file:
        file.write(line + "\n")


@app.task(queue=TEST_QUEUE, name="tests.slow_record", pass_context=True)
def slow_record(context, *, path: str, seconds: float) -> None:
    """``start <job id> <pid>``, ``seconds`` of work, ``done <job id> <pid>``."""
    _append(path, f"start {context.job.id} {os.getpid()}")
    time.sleep(seconds)
    _append(path, f"done {context.job.id} {os.getpid()}")


# Registered only for the periodic test, so other worker tests defer no ticks.
if os.environ.get("JOBS_TEST_TICK_FILE"):

    @app.periodic(cron=TICK_CRON, periodic_id="tests_tick")
    @app.task(queue=TEST_QUEUE, name="tests.tick")
    def tick(timestamp: int) -> None:
        """``<tick timestamp> <pid>`` per run."""
        _append(os.environ["JOBS_TEST_TICK_FILE"], f"{timestamp} {os.getpid()}")
