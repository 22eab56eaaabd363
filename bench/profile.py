"""Where each page's time goes: templates, ORM Python, the database, the rest.

Two passes of ``requests`` requests per page through Django's test client:

1. unprofiled: the wall time of each request, and the time spent inside
   ``connection.execute_wrapper`` (psycopg 3 fetches the rows during
   ``execute``, so this is the server, the round trip and the driver);
2. under cProfile: each function's self time (``tottime``) classified by its
   file (:func:`category`). Built-ins (file ``~``) and django/utils/functional.py
   (the wrappers of ``keep_lazy``/``lazy``, ``cached_property``: one code object
   serving every caller) take the category of their callers, in proportion to
   the time each caller spent in them.

The pass-1 time outside the database is split into templates / ORM Python /
other in the proportions pass 2 finds for those three: the driver's share of
pass 2 is left out, as pass 1 already counts it in the database time. The
profiler slows Python down, never the database, so only its proportions are
used, never its absolute times.

Imported as ``bench.profile``: the script's own directory must not be on
``sys.path``, where this module would shadow the standard library's
``profile`` (which cProfile imports).
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack

SPLIT = ("templates", "orm", "other")
LABELS = {"templates": "templates", "orm": "ORM Python", "other": "other"}

_TEMPLATE_DIRS = (
    "/django/template/",
    "/django/templatetags/",
    "/templatetags/",
    "/django/contrib/humanize/",
    # Widget rendering goes through the form renderer's templates.
    "/django/forms/",
    "/jinja2/",
)
_TEMPLATE_UTILS = (
    *(
        f"/django/utils/{name}.py"
        for name in (
            "html",
            "safestring",
            "formats",
            "numberformat",
            "dateformat",
            "text",
        )
    ),
    # The project's own HTML building: rows written with html_format, the
    # search form's selects (what templates would otherwise do).
    "/core/formatting.py",
    "/core/widgets.py",
)
_DRIVER_DIRS = ("/psycopg/", "/psycopg_binary/", "/psycopg_c/", "/psycopg_pool/")
_CALLERS_FILES = ("/django/utils/functional.py",)
TOP_FUNCTIONS = 5


def category(filename: str) -> str:
    """``templates``, ``orm``, ``driver``, ``other``, or ``callers`` (built-ins
    and pass-through wrappers: their callers' categories)."""
    path = filename.replace("\\", "/")
    if filename == "~" or path.endswith(_CALLERS_FILES):
        return "callers"
    if any(part in path for part in _DRIVER_DIRS):
        return "driver"
    if "/django/db/" in path:
        return "orm"
    if any(part in path for part in _TEMPLATE_DIRS) or path.endswith(_TEMPLATE_UTILS):
        return "templates"
    return "other"


def _shares(stats: dict, func, memo: dict, visiting: set) -> dict[str, float]:
    """The categories a function's self time belongs to, as fractions."""
    if func in memo:
        return memo[func]
    own = category(func[0])
    if own != "callers":
        memo[func] = {own: 1.0}
        return memo[func]
    if func in visiting:  # reached again through its own callers (recursion)
        return {"other": 1.0}
    visiting.add(func)
    callers = stats[func][4]
    # cProfile's caller entries are (calls, primitive calls, tottime, cumtime):
    # the function's self time spent on behalf of each caller.
    weights = {caller: entry[2] for caller, entry in callers.items()}
    if not any(weights.values()):
        weights = {caller: entry[0] for caller, entry in callers.items()}
    total = sum(weights.values())
    shares: dict[str, float] = defaultdict(float)
    if total:
        for caller, weight in weights.items():
            for name, fraction in _shares(stats, caller, memo, visiting).items():
                shares[name] += fraction * weight / total
    else:  # called from nowhere the profiler saw
        shares["other"] = 1.0
    visiting.discard(func)
    memo[func] = dict(shares)
    return memo[func]


def short_name(func) -> str:
    """``module:function`` from a pstats key (file, line, function)."""
    filename, _, name = func
    if filename == "~":
        return name
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = path.split("/", 1)[1]  # past "11/" of python3.11/
            break
    else:
        from django.conf import settings

        base = str(settings.BASE_DIR).replace("\\", "/") + "/"
        path = path.removeprefix(base)
    module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return f"{module}:{name}"


def self_times(profiler: cProfile.Profile) -> tuple[dict[str, float], list[dict]]:
    """Self seconds per category, and the functions with the most self time."""
    stats = pstats.Stats(profiler).stats
    totals: dict[str, float] = defaultdict(float)
    memo: dict = {}
    for func, (_, _, tottime, _, _) in stats.items():
        for name, fraction in _shares(stats, func, memo, set()).items():
            totals[name] += tottime * fraction
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)
    functions = [
        {
            "function": short_name(func),
            "category": max(memo[func].items(), key=lambda item: item[1])[0],
            "calls": entry[1],
            "self_s": entry[2],
        }
        for func, entry in top[:TOP_FUNCTIONS]
    ]
    return dict(totals), functions


def page_profile(call: Callable[[], object], *, requests: int) -> dict:
    """Both passes for one page (see the module docstring); ms per request.
    ``call`` makes the request and returns the response."""
    from django.db import connections

    def checked():
        # An error page would be profiled in the page's name otherwise.
        response = call()
        if response.status_code != 200:
            raise SystemExit(f"answered {response.status_code} during the profile")

    db_seconds = 0.0

    def timed(execute, sql, params, many, context):
        nonlocal db_seconds
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            db_seconds += time.perf_counter() - started

    for _ in range(3):  # warm: caches, session activity, first-use imports
        checked()
    walls = []
    with ExitStack() as stack:
        # Every alias (a replica, the jobs' direct connection) when configured.
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(timed))
        for _ in range(requests):
            started = time.perf_counter()
            checked()
            walls.append(time.perf_counter() - started)
    wall = sum(walls)

    profiler = cProfile.Profile()
    for _ in range(requests):
        profiler.enable()
        try:
            response = call()
        finally:
            profiler.disable()
        if response.status_code != 200:
            raise SystemExit(f"answered {response.status_code} during the profile")
    seconds, functions = self_times(profiler)
    split_total = sum(seconds.get(name, 0.0) for name in SPLIT)
    rest = max(wall - db_seconds, 0.0)
    per_request = 1000 / requests
    result = {
        "requests": requests,
        "ms": round(wall * per_request, 3),
        "median_ms": round(statistics.median(walls) * 1000, 3),
        "database_ms": round(db_seconds * per_request, 3),
        "profiled": {
            name: round(seconds.get(name, 0.0) * per_request, 3)
            for name in (*SPLIT, "driver")
        },
        "top": [
            {
                "function": f["function"],
                "category": f["category"],
                "calls": f["calls"],
                "self_ms": round(f["self_s"] * per_request, 3),
            }
            for f in functions
        ],
    }
    for name in SPLIT:
        share = seconds.get(name, 0.0) / split_total if split_total else 0.0
        result[f"{name}_ms"] = round(rest * share * per_request, 3)
    return result


def pages_profile(calls: dict[str, Callable[[], object]], *, requests: int) -> dict:
    """:func:`page_profile` for each page, by name."""
    results = {}
    for name, call in calls.items():
        try:
            results[name] = page_profile(call, requests=requests)
        except SystemExit as exc:
            raise SystemExit(f"{name} {exc}") from None
    return results


def report_lines(profile: dict) -> list[str]:
    """The report's section (markdown lines)."""
    if not profile:
        return []
    requests = next(iter(profile.values()))["requests"]

    def cell(ms: float, total: float) -> str:
        return f"{ms:.1f} ms ({100 * ms / total if total else 0:.0f} %)"

    lines = [
        "## Where the time goes",
        "",
        f"{requests} requests per page through Django's test client (the same "
        "client, cookies and API key as the query counts), in one process, twice. "
        "Unprofiled: the wall time of each request and the time inside "
        "`connection.execute_wrapper` (**database**: the server, the round trip "
        "and psycopg, which fetches the rows during `execute`). Then under "
        "cProfile: each function's self time classified by its file — "
        "**templates** (django/template, any templatetags, django/forms, "
        "django/contrib/humanize, django.utils html/safestring/formats/"
        "numberformat/dateformat/text, jinja2), **ORM Python** (django/db), "
        "psycopg (already in the database time, left out), **other** (request "
        "handling, middleware, sessions, URLs, views, the test client); a "
        "built-in, or a wrapper of django/utils/functional.py (`keep_lazy`, "
        "`lazy`, `cached_property`), takes its callers' categories in proportion "
        "to the time each spent in it. The floor page is left out (no database, "
        "no template). The unprofiled time outside the database is split in the "
        "profiled proportions (the profiler inflates Python, so only its "
        "proportions are used). Without wrk's concurrency or gunicorn: ms/request "
        "is the mean of one request at a time in this process, its database "
        "connection kept open between requests (connecting is in no column).",
        "",
        "| page | ms/request | templates | ORM Python | database | other |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in profile.items():
        total = r["ms"]
        lines.append(
            f"| {name} | {total:.1f} | {cell(r['templates_ms'], total)} | "
            f"{cell(r['orm_ms'], total)} | {cell(r['database_ms'], total)} | "
            f"{cell(r['other_ms'], total)} |"
        )
    lines += [
        "",
        f"<details><summary>Top {TOP_FUNCTIONS} functions by self time per page "
        "(profiled ms per request, inflated by the profiler)</summary>",
        "",
    ]
    for name, r in profile.items():
        tops = "; ".join(
            f"`{f['function']}` {f['self_ms']:.2f} ms ({f['category']}, "
            f"{f['calls'] / r['requests']:.0f} calls)"
            for f in r["top"]
        )
        lines.append(f"- {name}: {tops}")
    lines += ["", "</details>", ""]
    return lines
