"""Thin views: a form checks the input, one service does the work.

Every page that edits something looks the app up among the signed-in user's own
apps, so another user's app (of any status) answers 404 there, and a DRAFT of
someone else answers 404 everywhere.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.text import Truncator
from django.views.decorators.http import (
    require_http_methods,
    require_POST,
    require_safe,
)

from apps_catalog import selectors, services
from apps_catalog.forms import (
    AppForm,
    ExploreForm,
    MonetizationForm,
    PostForm,
    RequirementEditForm,
    RequirementFilterForm,
    RequirementForm,
    RequirementStatusForm,
    form_errors_add,
)
from apps_catalog.models import (
    TRASH_RETENTION,
    App,
    MonetizationModel,
    Post,
    Requirement,
)
from core.formatting import date_label, truncate_label, url_for_ids
from core.pagination import CappedPaginator, peek_page

PER_PAGE = 20
UNDO_DELETE_SESSION_KEY = "apps_catalog_undo_delete"


def _page(request, queryset, per_page: int = PER_PAGE):
    return CappedPaginator(queryset, per_page).get_page(request.GET.get("page"))


def _own_app(request, app_id: str) -> App:
    """One of the signed-in user's apps (not soft-deleted), else 404."""
    return get_object_or_404(
        App.objects.owned_by(request.user).select_related("owner"), pk=app_id
    )


def _visible_app(request, app_id: str) -> App:
    return get_object_or_404(
        selectors.apps_visible_to(request.user).select_related("owner"), pk=app_id
    )


def _own_child(request, app_id: str, model, pk: str, **lookups):
    """A row of ``model`` on one of the signed-in user's apps, else 404."""
    app = _own_app(request, app_id)
    row = get_object_or_404(model, pk=pk, app=app, **lookups)
    row.app = app
    return row


def _board_app(request, app_id: str) -> App:
    """A page anyone who can see the app may read, but only its owner posts to."""
    if request.method == "POST":
        return _own_app(request, app_id)
    return _visible_app(request, app_id)


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or ""
    # A path on this site only: redirect() would take a bare word ("abc") for a
    # URL pattern name and raise NoReverseMatch.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# --- catalog ------------------------------------------------------------------


@require_safe
def explore(request):
    form = ExploreForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = selectors.explore_page(
        query=filters.get("q", ""),
        monetization_type=filters.get("type", ""),
        sort=filters.get("sort") or "newest",
        number=request.GET.get("page"),
    )
    # The cards' display strings, one per cell (see core.formatting).
    app_url = url_for_ids("app_detail")
    for card in page:
        card["url"] = app_url(card["id"])
        card["summary"] = truncate_label(card["description"], 160)
        card["created"] = date_label(card["created_at"])
    return render(request, "apps_catalog/explore.html", {"form": form, "page": page})


@require_safe
@login_required
def my_apps(request):
    page = peek_page(
        selectors.apps_of_owner(owner=request.user),
        request.GET.get("page"),
        per_page=PER_PAGE,
    )
    # Each row's links and date, one reverse() for all rows (core.formatting).
    app_url, edit_url, board_url = (
        url_for_ids(name) for name in ("app_detail", "app_edit", "requirement_board")
    )
    for app in page:
        app.url, app.edit_url, app.board_url = (
            app_url(app.pk),
            edit_url(app.pk),
            board_url(app.pk),
        )
        app.updated_label = date_label(app.updated_at)
        if app.forked_from:
            app.forked_from.url = app_url(app.forked_from.pk)
    trash_page = selectors.apps_in_trash_page(
        owner=request.user, number=request.GET.get("trash"), size=PER_PAGE
    )
    # Set by a delete just before the redirect here: the message with Undo.
    undo_id = request.session.pop(UNDO_DELETE_SESSION_KEY, None)
    undo = next((app for app in trash_page if app.pk == undo_id), None)
    return render(
        request,
        "apps_catalog/my_apps.html",
        {
            "page": page,
            "trash_page": trash_page,
            "trash_days": TRASH_RETENTION.days,
            "undo": undo,
        },
    )


@require_safe
def app_detail(request, app_id):
    try:
        app = selectors.app_for_page(app_id=app_id, viewer=request.user)
    except App.DoesNotExist:
        raise Http404("No such app.") from None
    return render(
        request,
        "apps_catalog/app_detail.html",
        {
            "app": app,
            "is_owner": request.user.is_authenticated
            and request.user.pk == app.owner_id,
            "tree": selectors.app_fork_tree(app=app, viewer=request.user),
            "posts": selectors.posts_of_app(app=app, viewer=request.user)[:5],
        },
    )


# --- apps ---------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def app_create(request):
    form = AppForm(request.POST or None, creating=True)
    if request.method == "POST" and form.is_valid():
        try:
            app = services.app_create(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, f"“{app.name}” created.")
            return redirect(app)
    return render(request, "apps_catalog/app_form.html", {"form": form, "app": None})


@login_required
@require_http_methods(["GET", "POST"])
def app_edit(request, app_id):
    app = _own_app(request, app_id)
    form = AppForm(request.POST or None, instance=app)
    if request.method == "POST" and form.is_valid():
        try:
            services.app_update(app=app, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Changes saved.")
            return redirect(app)
    # The form may have written rejected values onto ``app``: show the saved name.
    saved = App.objects.only("name").get(pk=app.pk)
    return render(request, "apps_catalog/app_form.html", {"form": form, "app": saved})


_APP_ACTIONS = {
    "archive": (
        services.app_archive,
        "Archive",
        "It leaves Explore; you can restore it any time.",
        "“{}” archived.",
    ),
    "delete": (
        services.app_delete,
        "Delete",
        "It disappears from Explore and moves to the trash on My apps, where "
        f"you can restore it for {TRASH_RETENTION.days} days. Its forks stay.",
        "“{}” deleted.",
    ),
    "restore": (
        services.app_restore,
        "Restore",
        "It becomes active again.",
        "“{}” restored.",
    ),
}


def _app_action(request, app_id, action: str):
    if action == "restore":
        # The owner's trash too; the service refuses once the trash expired.
        app = get_object_or_404(
            App.objects.filter(owner=request.user).select_related("owner"), pk=app_id
        )
    else:
        app = _own_app(request, app_id)
    service, verb, consequence, done = _APP_ACTIONS[action]
    if request.method == "POST":
        try:
            service(app=app, actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            # A deleted app has no page (404): back to the trash on My apps.
            if app.status == App.Status.DELETED:
                return redirect("my_apps")
            return redirect(app)
        if action == "delete":
            # My apps shows the message with an Undo button (a form, so it is
            # rendered there rather than as a plain-text flash message).
            request.session[UNDO_DELETE_SESSION_KEY] = app.pk
            return redirect("my_apps")
        messages.success(request, done.format(app.name))
        return redirect(_next_url(request, app.get_absolute_url()))
    return render(
        request,
        "apps_catalog/confirm.html",
        {
            "app": app,
            "verb": verb,
            "question": f"{verb} “{app.name}”?",
            "consequence": consequence,
            "danger": action == "delete",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_archive(request, app_id):
    return _app_action(request, app_id, "archive")


@login_required
@require_http_methods(["GET", "POST"])
def app_delete(request, app_id):
    return _app_action(request, app_id, "delete")


@login_required
@require_POST
def app_restore(request, app_id):
    return _app_action(request, app_id, "restore")


@login_required
@require_http_methods(["GET", "POST"])
def app_fork(request, app_id):
    app = _visible_app(request, app_id)
    if request.method == "POST":
        try:
            fork = services.app_fork(app=app, actor=request.user)
        except PermissionDenied as exc:
            raise Http404 from exc
        messages.success(
            request, f"Forked “{app.name}”. Your copy is a draft until you publish it."
        )
        return redirect(fork)
    return render(
        request,
        "apps_catalog/confirm.html",
        {
            "app": app,
            "verb": "Fork",
            "question": f"Fork “{app.name}”?",
            "consequence": "You get your own draft copy with its requirements and "
            "monetization models.",
            "danger": False,
        },
    )


# --- requirements -------------------------------------------------------------


def _requirement_board_context(request, app: App, *, is_owner: bool) -> dict:
    """What the board partial needs; the filters come from the query string (the
    move forms post to a URL that carries the board's own)."""
    filters = RequirementFilterForm(request.GET or None)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    status, priority = chosen.get("status", ""), chosen.get("priority", "")
    query = urlencode({k: v for k, v in chosen.items() if v})
    return {
        "app": app,
        "is_owner": is_owner,
        "filters": filters,
        "filtered": bool(status or priority),
        "filter_query": f"?{query}" if query else "",
        # Where a move without JavaScript comes back to (the partial is also
        # rendered for the move's own URL, so not request.get_full_path).
        "board_url": reverse("requirement_board", args=[app.pk])
        + (f"?{query}" if query else ""),
        "board": selectors.requirement_board(app=app, status=status, priority=priority),
        "statuses": Requirement.Status.choices,
    }


@require_http_methods(["GET", "POST"])
def requirement_board(request, app_id):
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    app = _board_app(request, app_id)
    is_owner = request.user.is_authenticated and request.user.pk == app.owner_id
    add_form = RequirementForm(request.POST or None) if is_owner else None
    if request.method == "POST" and add_form.is_valid():
        try:
            services.requirement_create(
                app=app, actor=request.user, **add_form.cleaned_data
            )
        except ValidationError as exc:
            form_errors_add(add_form, exc)
        else:
            messages.success(request, "Requirement added.")
            return redirect("requirement_board", app_id=app.pk)
    context = _requirement_board_context(request, app, is_owner=is_owner)
    return render(
        request,
        "apps_catalog/requirement_board.html",
        {**context, "add_form": add_form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def requirement_edit(request, app_id, requirement_id):
    requirement = _own_child(request, app_id, Requirement, requirement_id)
    form = RequirementEditForm(request.POST or None, instance=requirement)
    current = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.requirement_update(
                requirement=requirement,
                actor=request.user,
                expected_version=data["version"],
                description=data["description"],
                priority=data["priority"],
                status=data["status"],
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
            # Show what is saved now next to the user's own text, so nothing is lost.
            current = Requirement.objects.get(pk=requirement.pk)
        else:
            messages.success(request, "Requirement saved.")
            return redirect("requirement_board", app_id=app_id)
    return render(
        request,
        "apps_catalog/requirement_form.html",
        {"app": requirement.app, "form": form, "current": current},
    )


@login_required
@require_POST
def requirement_status(request, app_id, requirement_id):
    """Move a card on the board. htmx requests get the board back (the partial,
    with this move's message in it) to swap in place; others are redirected."""
    app = _own_app(request, app_id)
    requirement = Requirement.objects.filter(pk=requirement_id, app=app).first()
    if requirement is None:
        if not request.htmx:
            raise Http404
        # Removed in another tab: say so and show the board as it is now.
        messages.error(request, "That requirement no longer exists.")
        return _requirement_board_partial(request, app)
    requirement.app = app
    name = Truncator(requirement.description).chars(40)
    form = RequirementStatusForm(request.POST)
    if "status" in form.errors:
        messages.error(
            request,
            f"“{name}” was not moved: choose one of "
            f"{', '.join(str(label) for _, label in Requirement.Status.choices)}.",
        )
    elif not form.is_valid():
        messages.error(
            request, f"“{name}” was not moved: reload the board and try again."
        )
    else:
        status = form.cleaned_data["status"]
        try:
            services.requirement_set_status(
                requirement=requirement,
                actor=request.user,
                status=status,
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            if any(e.code == "stale" for e in getattr(exc, "error_list", [])):
                messages.error(
                    request,
                    f"“{name}” was changed by someone else in the meantime, so it "
                    "was not moved. The board now shows its current state.",
                )
            else:
                messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, f"Moved “{name}” to {Requirement.Status(status).label}."
            )
    if request.htmx:
        return _requirement_board_partial(request, app, moved=requirement.pk)
    return redirect(
        _next_url(request, reverse("requirement_board", args=[requirement.app_id]))
    )


def _requirement_board_partial(request, app: App, *, moved: str = ""):
    context = _requirement_board_context(request, app, is_owner=True)
    # Shown (and so consumed) here, inside the swapped board, rather than on
    # the next full page load.
    context["board_messages"] = list(messages.get_messages(request))
    context["moved"] = moved
    return render(request, "apps_catalog/_requirement_board.html", context)


@login_required
@require_POST
def requirement_delete(request, app_id, requirement_id):
    requirement = _own_child(request, app_id, Requirement, requirement_id)
    services.requirement_delete(requirement=requirement, actor=request.user)
    messages.success(request, "Requirement removed.")
    return redirect("requirement_board", app_id=app_id)


# --- monetization -------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def monetization_editor(request, app_id):
    app = _own_app(request, app_id)
    form = MonetizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.monetization_create(
                app=app, actor=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Monetization model added.")
            return redirect("monetization_editor", app_id=app.pk)
    models = selectors.monetization_of_app(app=app)
    return render(
        request,
        "apps_catalog/monetization_editor.html",
        {"app": app, "form": form, "page": _page(request, models)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def monetization_edit(request, app_id, model_id):
    model = _own_child(request, app_id, MonetizationModel, model_id)
    form = MonetizationForm(request.POST or None, instance=model)
    if request.method == "POST" and form.is_valid():
        try:
            services.monetization_update(
                model=model, actor=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Monetization model saved.")
            return redirect("monetization_editor", app_id=app_id)
    return render(
        request,
        "apps_catalog/monetization_form.html",
        {"app": model.app, "form": form},
    )


@login_required
@require_POST
def monetization_delete(request, app_id, model_id):
    model = _own_child(request, app_id, MonetizationModel, model_id)
    services.monetization_delete(model=model, actor=request.user)
    messages.success(request, "Monetization model removed.")
    return redirect("monetization_editor", app_id=app_id)


# --- posts --------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def post_list(request, app_id):
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    app = _board_app(request, app_id)
    is_owner = request.user.is_authenticated and request.user.pk == app.owner_id
    form = PostForm(request.POST or None) if is_owner else None
    if request.method == "POST" and form.is_valid():
        try:
            services.post_create(author=request.user, app=app, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Post saved.")
            return redirect("post_list", app_id=app.pk)
    posts = selectors.posts_of_app(app=app, viewer=request.user)
    return render(
        request,
        "apps_catalog/post_list.html",
        {"app": app, "is_owner": is_owner, "form": form, "page": _page(request, posts)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def post_edit(request, app_id, post_id):
    post = _own_child(request, app_id, Post, post_id, author=request.user)
    form = PostForm(request.POST or None, instance=post)
    if request.method == "POST" and form.is_valid():
        try:
            services.post_update(post=post, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Post saved.")
            return redirect("post_list", app_id=app_id)
    return render(
        request, "apps_catalog/post_form.html", {"app": post.app, "form": form}
    )


@login_required
@require_POST
def post_delete(request, app_id, post_id):
    post = _own_child(request, app_id, Post, post_id, author=request.user)
    services.post_delete(post=post, actor=request.user)
    messages.success(request, "Post deleted.")
    return redirect("post_list", app_id=app_id)
