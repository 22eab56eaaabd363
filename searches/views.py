"""Keyword research pages and the JSON API; thin: forms validate, services act."""

from __future__ import annotations

import csv
import json
import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import upgrades_available, usage_for
from core.formatting import (
    datetime_label,
    iso_datetime,
    number_label,
    url_for_ids,
)
from core.services import client_ip
from searches import charts, selectors, services
from searches.forms import SavedSearchNameForm, SearchForm
from searches.models import SavedSearch, SearchHistory
from searches.providers import ProviderError, is_sample_provider
from searches.selectors import SAVED_PAGE_SIZE, SESSION_KEY

# Keywords a history row shows before "… and N more" (the detail page lists all).
HISTORY_KEYWORDS_SHOWN = 5


def _usage_context(request) -> dict:
    if not request.user.is_authenticated:
        return {}
    return {"usage": usage_for(request.user)}


def search(request):
    """The search form; results of this browser's last search, sortable."""
    quota_error = None
    if request.method == "POST":
        form = SearchForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                outcome = services.search_run(
                    user=request.user,
                    keywords=data["keywords"],
                    location=data["location"],
                    language=data["language"],
                    match_type=data["match_type"],
                    ip_address=client_ip(request),
                    user_agent=services.user_agent(request),
                )
            except services.QuotaExceeded as exc:
                quota_error = exc
            except ValidationError as exc:
                form.add_error(None, exc)
            except ProviderError as exc:
                form.add_error(None, exc.message)
            else:
                request.session[SESSION_KEY] = outcome.as_session()
                return redirect(reverse("search") + "#results")
        last = None
    else:
        last = request.session.get(SESSION_KEY)
        initial = {}
        if request.GET.get("keywords"):
            initial["keywords"] = request.GET["keywords"][:40_000]
        elif last:
            initial = {
                "keywords": "\n".join(last["keywords"]),
                "location": last["location"],
                "language": last["language"],
                "match_type": last["match_type"],
            }
        form = SearchForm(initial=initial)
    context = {
        "form": form,
        "last": last,
        "quota_error": quota_error,
        # Where a refused search can go: the plans, when one can be bought;
        # otherwise the message only says when the limit resets.
        "upgrades_available": upgrades_available(),
        "pricing_url": reverse("pricing"),
        **_usage_context(request),
    }
    if last:
        context["table"] = selectors.results_table(
            last["results"], request.GET.get("sort")
        )
        context["is_sample"] = is_sample_provider(last["provider"])
        context["save_form"] = SavedSearchNameForm(
            initial={"name": ", ".join(last["keywords"][:3])[:120]}
        )
    return render(request, "searches/search.html", context)


def _csv_response(results: list[dict], sort: str | None, filename: str, provider: str):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    if is_sample_provider(provider):
        filename = f"{filename}-sample-data"
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    csv.writer(response).writerows(selectors.results_csv_rows(results, sort))
    return response


@require_GET
def search_export(request):
    """CSV of the last search: the same rows, order and columns as the table."""
    last = request.session.get(SESSION_KEY)
    if not last:
        messages.info(request, "Run a search first, then export its results.")
        return redirect("search")
    return _csv_response(
        last["results"], request.GET.get("sort"), "keywords", last["provider"]
    )


@login_required
@require_POST
def search_save(request):
    last = request.session.get(SESSION_KEY)
    if not last:
        messages.error(request, "There is no search to save; run one first.")
        return redirect("search")
    form = SavedSearchNameForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["name"]))
        return redirect("search")
    try:
        saved = services.saved_search_create(
            user=request.user, name=form.cleaned_data["name"], search=last
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("search")
    messages.success(request, f"Saved “{saved.name}”.")
    return redirect(saved)


@login_required
def saved_list(request):
    page = Paginator(selectors.saved_searches_for(request.user), SAVED_PAGE_SIZE)
    page_obj = page.get_page(request.GET.get("page"))
    return render(
        request,
        "searches/saved_list.html",
        {"page_obj": page_obj, **_usage_context(request)},
    )


def _own_saved(request, pk) -> SavedSearch:
    return get_object_or_404(SavedSearch, pk=pk, user=request.user)


@login_required
def saved_detail(request, pk):
    saved = services.saved_search_open(saved_search=_own_saved(request, pk))
    return render(
        request,
        "searches/saved_detail.html",
        {
            "saved": saved,
            "table": selectors.results_table(saved.results, request.GET.get("sort")),
            "is_sample": is_sample_provider(saved.provider),
            "rename_form": SavedSearchNameForm(initial={"name": saved.name}),
        },
    )


@login_required
@require_GET
def saved_export(request, pk):
    saved = _own_saved(request, pk)
    return _csv_response(
        saved.results,
        request.GET.get("sort"),
        slugify(saved.name)[:60] or "saved-search",
        saved.provider,
    )


@login_required
@require_POST
def saved_rename(request, pk):
    saved = _own_saved(request, pk)
    form = SavedSearchNameForm(request.POST)
    if form.is_valid():
        try:
            services.saved_search_rename(
                saved_search=saved, name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Renamed.")
    else:
        messages.error(request, " ".join(form.errors["name"]))
    return redirect(saved)


@login_required
@require_POST
def saved_delete(request, pk):
    saved = _own_saved(request, pk)
    name = saved.name
    services.saved_search_delete(saved_search=saved)
    messages.success(request, f"Deleted “{name}”.")
    return redirect("searches:saved")


def _history_rows_label(rows: list[dict]) -> None:
    """Add each row's display strings: the table renders 50 rows of them, and
    one string per cell costs a fraction of a filter per cell
    (core.formatting)."""
    detail_url = url_for_ids("searches:history_detail")
    for row in rows:
        keywords = row["keywords"]
        row["url"] = detail_url(row["id"])
        row["keywords_all"] = ", ".join(keywords)
        row["keywords_shown"] = ", ".join(keywords[:HISTORY_KEYWORDS_SHOWN])
        row["more"] = max(0, row["keyword_count"] - HISTORY_KEYWORDS_SHOWN)
        row["when_iso"] = iso_datetime(row["searched_at"])
        row["when"] = datetime_label(row["searched_at"])
        row["avg_label"] = number_label(row["avg_volume"])
        row["total_label"] = number_label(row["total_volume"])
        row["is_sample"] = is_sample_provider(row["provider"])


@login_required
def history(request):
    page = selectors.history_page(
        user=request.user,
        # ?cursor= is what the older-only pager linked to; old links keep working.
        before=request.GET.get("before") or request.GET.get("cursor"),
        after=request.GET.get("after"),
    )
    _history_rows_label(page.rows)
    # The newest page's first row is the user's newest search: it keys the
    # chart's cache (selectors.history_chart_counts).
    newest = page.rows[0]["id"] if page.is_first and page.rows else None
    counts, today = selectors.history_chart_counts(user=request.user, newest_id=newest)
    return render(
        request,
        "searches/history.html",
        {
            "page": page,
            "rows": page.rows,
            "chart": charts.daily_bar_chart(counts, today=today),
            **_usage_context(request),
        },
    )


@login_required
def history_detail(request, pk):
    row = get_object_or_404(SearchHistory, pk=pk, user=request.user)
    return render(
        request,
        "searches/history_detail.html",
        {
            "row": row,
            "is_sample": is_sample_provider(row.provider),
            "again_keywords": "\n".join(row.keywords),
        },
    )


# --- JSON API --------------------------------------------------------------------


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, returning the reason instead of a 403 page."""

    def _reject(self, request, reason):
        return reason


def _csrf_failure(request) -> str | None:
    check = _CsrfCheck(lambda request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _api_error(status: int, error: str, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": error, "message": message, **extra}, status=status)


@csrf_exempt  # enforced below, so refused calls are recorded too
def api_keywords(request):
    """``POST /api/keywords/``: run a search as the signed-in session user.

    Body: ``{"keywords": [..] or "a, b", "location": "US", "language": "en",
    "match_type": "broad"}``. Every call, refused or not, leaves an APIUsage row.
    """
    started = time.monotonic()
    status = 500  # recorded as such if the view itself breaks
    try:
        try:
            response = _api_keywords(request)
        except RequestDataTooBig:
            # Raised wherever the body is first read (CSRF check or JSON).
            response = _api_error(413, "too_large", "The request body is too large.")
        status = response.status_code
        return response
    finally:
        services.api_usage_record(
            user=request.user,
            endpoint=request.path[:200],
            method=request.method or "",
            status_code=status,
            duration_ms=int((time.monotonic() - started) * 1000),
            ip_address=client_ip(request),
            user_agent=services.user_agent(request),
        )


def _is_valid_unicode(body) -> bool:
    """Whether every string in parsed JSON can be encoded as UTF-8.

    JSON lets a string carry a lone surrogate (``"\\ud800"``, or its raw
    bytes, which ``json.loads`` decodes with ``surrogatepass``); Python keeps
    it, and PostgreSQL, the cache key hash and the response encoder all refuse
    it later, as a 500.
    """
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _api_keywords(request) -> JsonResponse:
    if request.method != "POST":
        response = _api_error(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response
    if not request.user.is_authenticated:
        return _api_error(401, "not_authenticated", "Sign in to use the API.")
    reason = _csrf_failure(request)
    if reason:
        return _api_error(403, "csrf_failed", f"CSRF check failed: {reason}")
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        # RecursionError: arrays or objects nested thousands deep.
        return _api_error(400, "invalid_json", "The request body must be JSON.")
    if not isinstance(body, dict):
        return _api_error(400, "invalid_json", "Send a JSON object.")
    if not _is_valid_unicode(body):
        return _api_error(
            400,
            "invalid_text",
            "The request contains text that is not valid Unicode (a lone "
            "surrogate such as \\ud800); send UTF-8 text.",
        )
    options = {}
    for name, default in (
        ("location", "US"),
        ("language", "en"),
        ("match_type", "broad"),
    ):
        value = body.get(name, default)
        if not isinstance(value, str):
            return _api_error(400, "invalid", f"{name} must be a string.")
        options[name] = value
    try:
        outcome = services.search_run(
            user=request.user,
            keywords=body.get("keywords"),
            ip_address=client_ip(request),
            user_agent=services.user_agent(request),
            **options,
        )
    except services.QuotaExceeded as exc:
        return _api_error(
            429,
            "quota_exceeded",
            exc.messages[0],
            **exc.details(),
            upgrade_url=request.build_absolute_uri(reverse("billing")),
        )
    except ValidationError as exc:
        return _api_error(400, "invalid", " ".join(exc.messages), messages=exc.messages)
    except ProviderError as exc:
        return _api_error(502, "provider_error", exc.message)
    request.user.refresh_from_db(
        fields=["keyword_searches_this_month", "monthly_reset_at", "tier"]
    )
    return JsonResponse(
        {
            "search_id": outcome.history.pk,
            "provider": outcome.provider,
            "sample_data": outcome.is_sample,
            "cache_hit": outcome.cache_hit,
            "location": outcome.location,
            "language": outcome.language,
            "match_type": outcome.match_type,
            "keywords": outcome.keywords,
            "results": outcome.results,
            "usage": usage_for(request.user).as_json(),
        }
    )
