"""bench/profile.py files each frame under the part of a request it belongs to."""

import pytest

from bench.profile import category


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("/venv/site-packages/django/template/base.py", "templates"),
        ("/venv/site-packages/django/utils/html.py", "templates"),
        # The project's own HTML building counts as templates, not "other".
        ("/work/main/core/formatting.py", "templates"),
        ("/work/main/core/widgets.py", "templates"),
        ("/venv/site-packages/django/db/models/query.py", "orm"),
        ("/venv/site-packages/psycopg/cursor.py", "driver"),
        ("/venv/site-packages/django/utils/functional.py", "callers"),
        ("~", "callers"),
        ("/work/main/core/middleware.py", "other"),
        ("/work/main/searches/views.py", "other"),
    ],
)
def test_category(filename, expected):
    assert category(filename) == expected
