"""The account's "API keys" page: list, create (the key is shown once, in the
answer to the POST, never stored or shown again), revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api import selectors, services
from api.forms import ApiKeyCreateForm
from api.models import ApiKey


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    form = ApiKeyCreateForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_key = services.api_key_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
                request=request,
            )
        except ValidationError as exc:
            for field, errors in getattr(
                exc, "message_dict", {"__all__": exc.messages}
            ).items():
                form.add_error(None if field == "__all__" else field, errors)
        else:
            form = ApiKeyCreateForm()
    response = render(
        request,
        "api/api_keys.html",
        {
            "form": form,
            "new_key": new_key,
            "keys": selectors.api_keys_of(user=request.user)[:100],
        },
        status=400 if request.method == "POST" and new_key is None else 200,
    )
    # The page may carry a key in full: no cache may keep it.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_key_revoke(request, key_id):
    api_key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    services.api_key_revoke(api_key=api_key, actor=request.user, request=request)
    messages.success(
        request, f"Key “{api_key.name}” revoked; scripts using it now get 401."
    )
    return redirect("api_keys")
