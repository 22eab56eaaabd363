"""Run queued jobs inside a test, the way a worker would.

Jobs are deferred through the Django connection, so in a plain ``django_db``
test they sit uncommitted in the test's transaction where no worker process
could see them. :func:`jobs_run_queued` runs them in this process, on the same
connection, then removes their rows. Tests of the worker itself start a real
``manage.py procrastinate worker`` (tests/core/test_jobs_worker.py).
"""

from __future__ import annotations

from django.db import connection
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob


def jobs_queued(*, task_name: str | None = None, queue: str | None = None):
    jobs = ProcrastinateJob.objects.filter(status="todo").order_by("id")
    if task_name:
        jobs = jobs.filter(task_name=task_name)
    if queue:
        jobs = jobs.filter(queue_name=queue)
    return list(jobs)


def jobs_run_queued(*, queue: str | None = None) -> list:
    """Run every queued job (oldest first) and return their results; an
    exception propagates and leaves the job's row in place."""
    results = []
    for job in jobs_queued(queue=queue):
        task = app.tasks[job.task_name]
        results.append(task.func(**job.args))
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs WHERE id = %s", [job.id])
    return results


def periodic_of(task):
    """The periodic registration (cron, periodic id) of ``task``."""
    [periodic] = [
        p for p in app.periodic_registry.periodic_tasks.values() if p.task is task
    ]
    return periodic
