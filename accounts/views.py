from __future__ import annotations

import copy
from http import HTTPStatus
from urllib.parse import urlencode

from allauth.account.utils import get_next_redirect_url
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from accounts import selectors, services
from accounts.forms import (
    DeleteAccountForm,
    DisplayNameForm,
    MagicLinkRequestForm,
    ProfileForm,
)
from accounts.models import PUBLIC_NAME_FALLBACK
from accounts.useragent import describe_user_agent


def _next_url(request) -> str | None:
    """``next`` when it is a safe place to go after signing in: a path on this
    site or an absolute URL to an allowed host (allauth's check), else None.

    allauth passes a bare word such as ``abc`` as a relative URL, and
    ``redirect()`` takes a bare word for a URL pattern name: ``NoReverseMatch``,
    a 500. Such a ``next`` is ignored, as an off-site one is.
    """
    url = get_next_redirect_url(request)
    if url and (url.startswith("/") or url.startswith(("http://", "https://"))):
        return url
    return None


@never_cache
def login(request):
    """The one sign-in page: an email field for a magic link and a button per
    configured OAuth provider. Staff use it too (the admin sends them here)."""
    next_url = _next_url(request)
    if request.user.is_authenticated:
        return redirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))
    form = MagicLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        try:
            services.magic_link_request(
                email=email, request=request, redirect_url=next_url
            )
        except services.MagicLinkRateLimited:
            return render(
                request,
                "accounts/rate_limited.html",
                status=HTTPStatus.TOO_MANY_REQUESTS,
            )
        # Same page whether or not the address has an account.
        return render(
            request,
            "accounts/magic_link_sent.html",
            {"email": services.normalize_email(email)},
        )
    return render(
        request,
        "account/login.html",
        {
            "form": form,
            "next": next_url or "",
            "providers": selectors.oauth_providers(request=request),
        },
    )


@never_cache
def magic_link(request, secret: str):
    """GET shows a one-click confirmation and changes nothing (mail scanners
    prefetch links); POST redeems the link and signs in."""
    next_url = _next_url(request)
    if request.method == "POST":
        try:
            redemption = services.magic_link_redeem(secret=secret, request=request)
        except services.MagicLinkInvalid as exc:
            return _link_problem(request, exc)
        if redemption.created and not redemption.user.has_chosen_name:
            # A new account: ask once what to call its owner, then go on.
            target = next_url or resolve_url(settings.LOGIN_REDIRECT_URL)
            next_url = f"{reverse('account_name')}?{urlencode({'next': target})}"
        return services.user_sign_in(
            request=request,
            user=redemption.user,
            method="magic_link",
            redirect_url=next_url,
            signup=redemption.created,
        )
    try:
        link = services.magic_link_peek(secret=secret)
    except services.MagicLinkInvalid as exc:
        return _link_problem(request, exc)
    return render(
        request,
        "accounts/magic_link_confirm.html",
        {"email": link.email, "next": next_url or ""},
    )


def _link_problem(request, exc):
    status = HTTPStatus.NOT_FOUND if exc.reason == "invalid" else HTTPStatus.GONE
    return render(
        request,
        "accounts/magic_link_invalid.html",
        {
            "reason": exc.reason,
            "message": exc.messages[0],
            "form": MagicLinkRequestForm(),
        },
        status=status,
    )


@never_cache
def admin_login(request):
    """The admin has no login form of its own: people sign in on the normal
    sign-in page; a signed-in non-admin gets a clear 403 rather than a loop."""
    next_url = _next_url(request) or reverse("admin:index")
    if request.user.is_authenticated:
        if request.user.is_staff:
            return redirect(next_url)
        return render(
            request, "accounts/admin_forbidden.html", status=HTTPStatus.FORBIDDEN
        )
    return redirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")


def no_passwords(request):
    raise Http404("There are no passwords here: sign in by email link or provider.")


# --- account pages ---------------------------------------------------------------


@login_required
def account(request):
    user = request.user
    form = ProfileForm(instance=user)
    return render(request, "accounts/account.html", _account_context(request, form))


def _account_context(request, form):
    user = request.user
    return {
        "form": form,
        "usage": selectors.usage_for(user),
        "social_count": selectors.social_accounts_for(user=user).count(),
        "session_count": selectors.user_sessions_active(user=user).count(),
        "data_exports": selectors.data_exports_of(user=user),
        "data_export_pending": selectors.data_export_pending(user=user),
    }


@never_cache
@login_required
def account_name(request):
    """Asks "What should we call you?" once, right after the sign-in that
    created the account (``magic_link``); skipping keeps the neutral public
    name (``User.public_name``), and the account page can set it any time."""
    next_url = _next_url(request) or resolve_url(settings.LOGIN_REDIRECT_URL)
    form = DisplayNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_profile_update(
                user=request.user,
                data={"name": form.cleaned_data["name"]},
                request=request,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Welcome, {request.user.name}!")
            return redirect(next_url)
    status = HTTPStatus.BAD_REQUEST if form.is_bound else HTTPStatus.OK
    return render(
        request,
        "accounts/account_name.html",
        {"form": form, "next": next_url, "fallback": PUBLIC_NAME_FALLBACK},
        status=status,
    )


@login_required
@require_POST
def data_export_request(request):
    """The account page's "Download my data": queue the archive; a worker
    builds it and mails the link (it shows on the account page too)."""
    try:
        services.data_export_request(
            user=request.user, base_url=request.build_absolute_uri("/")
        )
    except services.DataExportPending as exc:
        messages.info(request, exc.messages[0])
    else:
        messages.success(
            request,
            "Your archive is being prepared. We will email you a download link "
            "when it is ready; it will also be listed here.",
        )
    return redirect(f"{reverse('account')}#data")


@never_cache
@login_required
@require_safe
def data_export_download(request, export_id: str):
    """One of the signed-in user's own archives; anyone else's, an expired or
    an unknown one is a 404."""
    export = selectors.data_export_get(user=request.user, export_id=export_id)
    if export is None:
        raise Http404("No such archive: it may have expired.")
    try:
        stream = export.path.open("rb")
    except FileNotFoundError as exc:  # pruned since data_export_get looked
        raise Http404("No such archive: it may have expired.") from exc
    stamp = export.created_at.strftime("%Y-%m-%d")
    return FileResponse(
        stream,
        as_attachment=True,
        filename=f"launchpad-data-{stamp}.json",
        content_type="application/json",
    )


@login_required
@require_POST
def profile_update(request):
    user = request.user
    # The form validates against a copy: the service compares old and new values
    # (for the audit row) and a failed form must not touch request.user.
    form = ProfileForm(request.POST, instance=copy.copy(user))
    if form.is_valid():
        try:
            services.user_profile_update(
                user=user, data=form.cleaned_data, request=request
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Profile saved.")
            return redirect("account")
    return render(
        request,
        "accounts/account.html",
        _account_context(request, form),
        status=HTTPStatus.BAD_REQUEST,
    )


@login_required
def account_delete(request):
    form = DeleteAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_delete(
                user=request.user,
                confirm_email=form.cleaned_data["confirm_email"],
                request=request,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            request.session.flush()
            request.user = AnonymousUser()
            messages.success(request, "Your account has been deleted.")
            return redirect("home")
    status = HTTPStatus.BAD_REQUEST if request.method == "POST" else HTTPStatus.OK
    return render(
        request, "accounts/account_delete.html", {"form": form}, status=status
    )


def _posted_id(request, field: str) -> int:
    """An integer primary key from the POST body; anything else is a 404."""
    value = request.POST.get(field, "")
    if not value.isdecimal() or len(value) > 18:
        raise Http404
    return int(value)


@login_required
def connections(request):
    """Connected Google/GitHub accounts: connect another, disconnect one."""
    if request.method == "POST":
        account = get_object_or_404(
            SocialAccount, pk=_posted_id(request, "account"), user_id=request.user.pk
        )
        try:
            services.social_account_disconnect(request=request, account=account)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return _connections_page(request, status=HTTPStatus.BAD_REQUEST)
        messages.success(request, "Account disconnected.")
        return redirect("socialaccount_connections")
    return _connections_page(request)


def _connections_page(request, status=HTTPStatus.OK):
    providers = selectors.oauth_providers(request=request)
    names = {provider.id: provider.name for provider in providers}
    accounts = list(selectors.social_accounts_for(user=request.user))
    for acc in accounts:
        # A provider whose credentials were removed since it was linked is no
        # longer listed: fall back to its id.
        acc.provider_name = names.get(acc.provider, acc.provider.title())
        data = acc.extra_data or {}
        acc.label = data.get("email") or data.get("login") or acc.uid
    return render(
        request,
        "socialaccount/connections.html",
        {
            "accounts": accounts,
            "providers": providers,
            "email_verified": request.user.email_verified_at is not None,
        },
        status=status,
    )


@login_required
def sessions(request):
    """Where the user is signed in; end one session or all the others."""
    if request.method == "POST":
        if request.POST.get("action") == "revoke_others":
            count = services.user_sessions_revoke_others(request=request)
            messages.success(request, f"Signed out {count} other session(s).")
            return redirect("usersessions_list")
        session = get_object_or_404(
            selectors.user_sessions_active(user=request.user),
            pk=_posted_id(request, "session"),
        )
        current = session.session_key == request.session.session_key
        services.user_session_revoke(request=request, session=session)
        if current:
            return redirect("home")
        messages.success(request, "Session signed out.")
        return redirect("usersessions_list")
    rows = [
        {
            "id": s.pk,
            "device": describe_user_agent(s.user_agent),
            "ip": s.ip,
            "created_at": s.created_at,
            "last_seen_at": s.last_seen_at,
            "current": s.session_key == request.session.session_key,
        }
        for s in selectors.user_sessions_active(user=request.user)
    ]
    return render(request, "usersessions/usersession_list.html", {"sessions": rows})
