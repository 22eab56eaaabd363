import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import DataError, OperationalError
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import selectors, services, stripe_api
from billing.forms import UpgradeForm
from billing.models import WebhookEvent

logger = logging.getLogger(__name__)


def pricing(request):
    return render(
        request,
        "billing/pricing.html",
        {
            "plans": selectors.plans(),
            "configured": stripe_api.billing_configured(),
            "overview": (
                selectors.billing_overview(request.user)
                if request.user.is_authenticated
                else None
            ),
        },
    )


@login_required
def billing(request):
    overview = selectors.billing_overview(request.user)
    return render(
        request,
        "billing/billing.html",
        {
            "overview": overview,
            "plans": selectors.plans(),
            "configured": overview.configured,
        },
    )


def _external_redirect(url: str) -> HttpResponseRedirect:
    # 303: the browser follows a POST's answer with a GET, as Stripe documents.
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@login_required
@require_POST
def upgrade(request):
    form = UpgradeForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("plan", ["Invalid plan."])))
        return redirect("billing")
    try:
        url = services.checkout_session_start(
            user=request.user,
            plan=form.cleaned_data["plan"],
            success_url=request.build_absolute_uri(reverse("billing_success"))
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=request.build_absolute_uri(reverse("billing_cancel")),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("billing")
    return _external_redirect(url)


@login_required
@require_POST
def portal(request):
    try:
        url = services.portal_session_start(
            user=request.user,
            return_url=request.build_absolute_uri(reverse("billing")),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("billing")
    return _external_redirect(url)


@login_required
def success(request):
    return render(request, "billing/success.html")


@login_required
def cancel(request):
    return render(request, "billing/cancel.html")


@csrf_exempt  # The only CSRF-exempt view: Stripe proves itself by signature.
@require_POST
def webhook(request):
    try:
        event = stripe_api.webhook_payload_verify(
            payload=request.body,
            sig_header=request.headers.get("Stripe-Signature", ""),
        )
    except stripe_api.WebhookVerificationError as exc:
        logger.warning("Stripe webhook refused: %s", exc)
        return JsonResponse({"error": "invalid signature or payload"}, status=400)
    try:
        record = services.webhook_event_receive(event=event)
    except DataError:
        # Signed, but holding what jsonb cannot store (NaN, a lone surrogate):
        # nothing was recorded, and a retry would fail the same way.
        logger.warning("Stripe event %s cannot be stored", event["id"], exc_info=True)
        return JsonResponse({"error": "invalid payload"}, status=400)
    except OperationalError:
        # The database is unreachable or the event row stayed locked: Stripe retries.
        logger.exception("Stripe event %s could not be recorded", event["id"])
        return JsonResponse({"error": "try again later"}, status=503)
    body = {"id": record.id, "status": record.status}
    if record.status == WebhookEvent.Status.FAILED:
        return JsonResponse(body, status=500)
    return JsonResponse(body)
