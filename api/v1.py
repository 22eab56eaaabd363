"""/api/v1/: the public API (django-ninja). Every operation is scoped to the
key's owner; writes need the ``write`` scope. README "API" has a curl example
per group; the OpenAPI document is /api/v1/openapi.json, the docs /api/v1/docs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from ninja import Field, NinjaAPI, Path, Query, Router, Schema, Status
from ninja.openapi.schema import OpenAPISchema
from pydantic import ConfigDict

from accounts.selectors import tier_effective, usage_for
from api import schemas as s
from api.auth import ApiKeyAuth, scope_require
from api.cursors import CursorInvalid, page_of
from api.parser import ApiParser
from api.problems import PROBLEM_CONTENT_TYPE, Conflict, problem, problems_install
from apps_catalog import selectors as catalog_selectors
from apps_catalog import services as catalog
from apps_catalog.models import App, MonetizationModel, Requirement
from core.services import client_ip
from searches import selectors as search_selectors
from searches import services as searches
from searches.models import SavedSearch, SearchHistory
from searches.providers.base import ProviderError

PAGE_SIZE_MAX = 100

# Ids in paths have the shape core.ids makes; anything else is refused before
# any query (a NUL byte would otherwise reach PostgreSQL).
IdParam = Annotated[str, Path(pattern=s.ID)]

# Problems each kind of operation can answer, documented in the schema so a
# client (and schemathesis) knows every status it may see.
READ_ERRORS = (400, 401, 422, 429)
ITEM_ERRORS = (*READ_ERRORS, 404)
# Lists page with a cursor; one not given out is a 404.
PAGED_ERRORS = ITEM_ERRORS
WRITE_ERRORS = (400, 401, 403, 413, 422, 429)
ITEM_WRITE_ERRORS = (*WRITE_ERRORS, 404)


def responses(ok: dict, errors=()) -> dict:
    return {**ok, **dict.fromkeys(errors, s.Problem)}


class Api(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs) -> OpenAPISchema:
        """Problems are application/problem+json (RFC 9457), not
        application/json as ninja documents every response."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
        return schema


api = Api(
    title="Launchpad API",
    version="1",
    description="Keyword research, saved searches, history and the app catalog "
    "for scripts. Authenticate with `Authorization: Bearer <key>` (keys are made "
    "on your account's API keys page). Errors are RFC 9457 problem details.",
    auth=ApiKeyAuth(),
    parser=ApiParser(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
problems_install(api)


@api.exception_handler(searches.QuotaExceeded)
def _quota_exceeded(request, exc):
    return problem(
        429,
        "quota_exceeded",
        exc.messages[0],
        **exc.details(),
    )


@api.exception_handler(ProviderError)
def _provider_error(request, exc):
    return problem(502, "provider_error", exc.message)


@api.exception_handler(CursorInvalid)
def _cursor_invalid(request, exc):
    # The page a cursor names does not exist: 404, like any unknown resource.
    return problem(404, "cursor_unknown", "This cursor was not given out by this API.")


class Paging(Schema):
    model_config = ConfigDict(extra="forbid")

    cursor: str | None = Field(
        None,
        max_length=300,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="next_cursor of the previous page. One that was not given out "
        "answers 404.",
    )
    limit: int = Field(50, ge=1, le=PAGE_SIZE_MAX)

    def size(self) -> int:
        return self.limit


def _usage(user) -> s.Usage:
    usage = usage_for(user)
    return s.Usage(
        tier=tier_effective(user),
        used=usage.used,
        limit=usage.limit,
        remaining=usage.remaining,
        resets_at=usage.reset_at,
    )


# --- keyword research -------------------------------------------------------------

research = Router(tags=["Keyword research"])


@research.post(
    "/searches",
    response=responses({200: s.SearchOut}, (*WRITE_ERRORS, 502)),
    summary="Run a keyword search",
)
def search_run(request, payload: s.SearchIn):
    """Same validation, quota, cache and provider as the search page: counts
    against the monthly keyword quota (429 ``quota_exceeded`` over it)."""
    scope_require(request, "read")
    outcome = searches.search_run(
        user=request.user,
        keywords=payload.keywords,
        location=payload.location,
        language=payload.language,
        match_type=payload.match_type,
        ip_address=client_ip(request),
        user_agent=searches.user_agent(request),
    )
    request.user.refresh_from_db(
        fields=["keyword_searches_this_month", "monthly_reset_at", "tier"]
    )
    return {
        "keywords": outcome.keywords,
        "location": outcome.location,
        "language": outcome.language,
        "match_type": outcome.match_type,
        "provider": outcome.provider,
        "is_sample": outcome.is_sample,
        "cache_hit": outcome.cache_hit,
        "results": outcome.results,
        "history_id": outcome.history.pk,
        "usage": _usage(request.user),
    }


@research.get("/usage", response=responses({200: s.Usage}, READ_ERRORS))
def usage_read(request):
    """Keywords used this month, the limit of the effective plan and when it resets."""
    return _usage(request.user)


@research.get(
    "/saved-searches", response=responses({200: s.SavedSearchPage}, PAGED_ERRORS)
)
def saved_list(request, paging: Query[Paging]):
    """Your saved searches, most recently opened first."""
    qs = SavedSearch.objects.filter(user=request.user).defer("results")
    rows, next_cursor = page_of(
        qs, ("last_accessed_at", "id"), paging.cursor, paging.size()
    )
    return {"items": rows, "next_cursor": next_cursor}


@research.post(
    "/saved-searches",
    response=responses({201: s.SavedSearchOut}, (*WRITE_ERRORS, 502)),
)
def saved_create(request, payload: s.SavedSearchIn):
    """Run a search (counted against the quota) and save it with its results."""
    scope_require(request, "write")
    outcome = searches.search_run(
        user=request.user,
        keywords=payload.search.keywords,
        location=payload.search.location,
        language=payload.search.language,
        match_type=payload.search.match_type,
        ip_address=client_ip(request),
        user_agent=searches.user_agent(request),
    )
    saved = searches.saved_search_create(
        user=request.user, name=payload.name, search=outcome.as_session()
    )
    return Status(201, saved)


def _saved_of(request, saved_id: str) -> SavedSearch:
    return get_object_or_404(SavedSearch, pk=saved_id, user=request.user)


@research.get(
    "/saved-searches/{saved_id}",
    response=responses({200: s.SavedSearchOut}, ITEM_ERRORS),
)
def saved_read(request, saved_id: IdParam):
    """One saved search with its results (marks it opened now)."""
    return searches.saved_search_open(saved_search=_saved_of(request, saved_id))


@research.patch(
    "/saved-searches/{saved_id}",
    response=responses({200: s.SavedSearchOut}, ITEM_WRITE_ERRORS),
)
def saved_rename(request, saved_id: IdParam, payload: s.SavedSearchRename):
    scope_require(request, "write")
    saved = _saved_of(request, saved_id)
    return searches.saved_search_rename(saved_search=saved, name=payload.name)


@research.delete(
    "/saved-searches/{saved_id}", response=responses({204: None}, ITEM_WRITE_ERRORS)
)
def saved_delete(request, saved_id: IdParam):
    scope_require(request, "write")
    searches.saved_search_delete(saved_search=_saved_of(request, saved_id))
    return Status(204, None)


@research.get("/history", response=responses({200: s.HistoryPage}, PAGED_ERRORS))
def history_list(request, paging: Query[Paging]):
    """Your searches, newest first; keyset cursor on (searched_at, id)."""
    qs = SearchHistory.objects.filter(user=request.user).only(
        *search_selectors.HISTORY_LIST_FIELDS
    )
    rows, next_cursor = page_of(qs, ("searched_at", "id"), paging.cursor, paging.size())
    return {"items": rows, "next_cursor": next_cursor}


# --- public catalog ------------------------------------------------------------------

catalog_router = Router(tags=["Catalog"])


class CatalogFilters(Paging):
    q: str = Field("", max_length=100, pattern=s.TEXT)
    type: MonetizationModel.Type | None = None
    sort: Literal["newest", "forks"] = "newest"


CATALOG_SORT_FIELDS = {
    "newest": ("created_at", "id"),
    "forks": ("fork_count", "created_at", "id"),
}


def _app_summary(app: App) -> dict:
    return {
        "id": app.pk,
        "name": app.name,
        "description": app.description,
        "status": app.status,
        "fork_count": app.fork_count,
        "owner_name": app.owner.public_name,
        "created_at": app.created_at,
    }


def _app_full(app: App) -> dict:
    return {
        **_app_summary(app),
        "domain": app.domain,
        "forked_from_id": app.forked_from_id,
        "updated_at": app.updated_at,
        "monetization": [
            {
                "id": m.pk,
                "type": m.type,
                "price": m.price,
                "subscription_interval": m.subscription_interval,
                "features": m.features or [],
            }
            for m in app.monetization_models.all()
        ],
    }


@catalog_router.get("/apps", response=responses({200: s.AppPage}, PAGED_ERRORS))
def apps_list(request, filters: Query[CatalogFilters]):
    """ACTIVE apps: search name and description, filter by monetization type,
    sort newest or most forked."""
    sort = filters.sort
    qs = catalog_selectors.apps_explore(
        query=filters.q,
        monetization_type=filters.type or "",
        sort=sort,
    )
    rows, next_cursor = page_of(
        qs, CATALOG_SORT_FIELDS[sort], filters.cursor, filters.size()
    )
    return {"items": [_app_summary(a) for a in rows], "next_cursor": next_cursor}


def _visible_app(request, app_id: str) -> App:
    qs = (
        App.objects.visible_to(request.user)
        .select_related("owner")
        .prefetch_related(
            Prefetch(
                "monetization_models",
                queryset=MonetizationModel.objects.order_by("created_at", "id"),
            )
        )
    )
    return get_object_or_404(qs, pk=app_id)


@catalog_router.get("/apps/{app_id}", response=responses({200: s.AppOut}, ITEM_ERRORS))
def app_read(request, app_id: IdParam):
    """One app you can see (ACTIVE, or your own) with its monetization models."""
    return _app_full(_visible_app(request, app_id))


# --- your apps ---------------------------------------------------------------------

mine = Router(tags=["Your apps"])


def _own_app(request, app_id: str) -> App:
    qs = (
        App.objects.filter(owner=request.user)
        .exclude(status=App.Status.DELETED)
        .select_related("owner")
        .prefetch_related("monetization_models")
    )
    return get_object_or_404(qs, pk=app_id)


@mine.get("/me/apps", response=responses({200: s.AppPage}, PAGED_ERRORS))
def my_apps_list(request, paging: Query[Paging]):
    """Your apps (not deleted), newest first."""
    qs = (
        App.objects.filter(owner=request.user)
        .exclude(status=App.Status.DELETED)
        .select_related("owner")
    )
    rows, next_cursor = page_of(qs, ("created_at", "id"), paging.cursor, paging.size())
    return {"items": [_app_summary(a) for a in rows], "next_cursor": next_cursor}


@mine.post("/me/apps", response=responses({201: s.AppOut}, (*WRITE_ERRORS, 409)))
def my_app_create(request, payload: s.AppIn):
    scope_require(request, "write")
    app = catalog.app_create(
        owner=request.user,
        name=payload.name,
        description=payload.description,
        domain=payload.domain,
        status=payload.status,
    )
    return Status(201, _app_full(_own_app(request, app.pk)))


@mine.patch(
    "/me/apps/{app_id}", response=responses({200: s.AppOut}, (*ITEM_WRITE_ERRORS, 409))
)
def my_app_update(request, app_id: IdParam, payload: s.AppPatch):
    """Change the fields you send; the others stay."""
    scope_require(request, "write")
    app = _own_app(request, app_id)
    fields = payload.dict(exclude_unset=True)
    catalog.app_update(
        app=app,
        actor=request.user,
        name=fields.get("name", app.name),
        description=fields.get("description", app.description),
        domain=fields.get("domain", app.domain),
        status=fields.get("status"),
    )
    return _app_full(_own_app(request, app_id))


@mine.get(
    "/me/apps/{app_id}/requirements",
    response=responses({200: list[s.RequirementOut]}, ITEM_ERRORS),
)
def requirements_list(request, app_id: IdParam):
    """The app's requirements, most urgent first (at most 500)."""
    app = _own_app(request, app_id)
    return list(catalog_selectors.requirements_of_app(app=app)[:500])


@mine.post(
    "/me/apps/{app_id}/requirements",
    response=responses({201: s.RequirementOut}, ITEM_WRITE_ERRORS),
)
def requirement_create(request, app_id: IdParam, payload: s.RequirementIn):
    scope_require(request, "write")
    app = _own_app(request, app_id)
    requirement = catalog.requirement_create(
        app=app,
        actor=request.user,
        description=payload.description,
        priority=payload.priority,
        status=payload.status,
    )
    return Status(201, requirement)


@mine.patch(
    "/me/apps/{app_id}/requirements/{requirement_id}",
    response=responses({200: s.RequirementOut}, (*ITEM_WRITE_ERRORS, 409)),
)
def requirement_update(
    request, app_id: IdParam, requirement_id: IdParam, payload: s.RequirementPatch
):
    """A versioned edit: send the ``version`` you read. If someone changed the
    requirement since, the answer is 409 with ``current_version``."""
    scope_require(request, "write")
    app = _own_app(request, app_id)
    requirement = get_object_or_404(Requirement, pk=requirement_id, app=app)
    if requirement.version != payload.version:
        raise Conflict(
            catalog.STALE_REQUIREMENT_MESSAGE, current_version=requirement.version
        )
    try:
        return catalog.requirement_update(
            requirement=requirement,
            actor=request.user,
            expected_version=payload.version,
            description=(
                payload.description
                if payload.description is not None
                else requirement.description
            ),
            priority=payload.priority or requirement.priority,
            status=payload.status,
        )
    except ValidationError as exc:
        if getattr(exc, "code", None) == "stale":
            current = Requirement.objects.values_list("version", flat=True).get(
                pk=requirement.pk
            )
            raise Conflict(" ".join(exc.messages), current_version=current) from exc
        raise


api.add_router("", research)
api.add_router("", catalog_router)
api.add_router("", mine)
