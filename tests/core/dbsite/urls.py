"""The site's URLs plus probes that report which database server ran a query.

Test-only (the settings in this package are the only ones that route here):
the probes skip CSRF and sign in without a password.
"""

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth import login
from django.contrib.contenttypes.models import ContentType
from django.db import connections, transaction
from django.db.models import BooleanField, F, IntegerField
from django.db.models.expressions import RawSQL
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from accounts.models import User


def read_server() -> dict:
    """Which server answers a routed ORM read: its port and whether it is a standby."""
    row = (
        ContentType.objects.annotate(
            in_recovery=RawSQL("pg_is_in_recovery()", (), output_field=BooleanField()),
            port=RawSQL(
                "current_setting('port')::int", (), output_field=IntegerField()
            ),
        )
        .values("in_recovery", "port")
        .first()
    )
    return row


def ping(request):
    return JsonResponse({"ok": True})


def read(request):
    return JsonResponse({"server": read_server()})


def find(request):
    found = User.objects.filter(email=request.GET["email"]).exists()
    return JsonResponse({"found": found, "server": read_server()})


@csrf_exempt
def write(request):
    email = request.POST["email"]
    before = read_server()
    User.objects.create_user(email)
    found = User.objects.filter(email=email).exists()
    return JsonResponse({"before": before, "found": found, "server": read_server()})


@csrf_exempt
def raw_write(request):
    email = request.POST["email"]
    before = read_server()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_user SET name = 'raw' WHERE email = %s", [email]
        )
    renamed = User.objects.filter(email=email, name="raw").exists()
    return JsonResponse({"before": before, "found": renamed, "server": read_server()})


@csrf_exempt
def atomic(request):
    outside = read_server()
    with transaction.atomic():
        inside = read_server()
    return JsonResponse({"outside": outside, "inside": inside, "after": read_server()})


@csrf_exempt
def sign_in(request):
    user, _ = User.objects.get_or_create(
        email=request.POST["email"],
        defaults={"role": request.POST.get("role", User.Role.USER)},
    )
    if user.role == User.Role.ADMIN and not is_mfa_enabled(user):
        # Staff need a second factor before the admin opens (accounts.middleware).
        TOTP.activate(user, generate_totp_secret())
    login(request, user, backend="allauth.account.auth_backends.AuthenticationBackend")
    return JsonResponse({"id": user.pk})


def iterate(request):
    # Chunked reads: a server-side cursor unless DISABLE_SERVER_SIDE_CURSORS.
    content_types = sum(1 for _ in ContentType.objects.iterator(chunk_size=5))
    users = sum(1 for _ in User.objects.order_by("pk").iterator(chunk_size=10))
    return JsonResponse(
        {
            "content_types": content_types,
            "users": users,
            "server_side_cursors_disabled": bool(
                connections["default"].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
            ),
        }
    )


@csrf_exempt
def lock(request):
    with transaction.atomic():
        user = User.objects.select_for_update().get(email=request.POST["email"])
        User.objects.filter(pk=user.pk).update(
            keyword_searches_total=F("keyword_searches_total") + 1
        )
    user.refresh_from_db()
    return JsonResponse({"total": user.keyword_searches_total})


@csrf_exempt
def bulk(request):
    prefix = request.POST["prefix"]
    count = int(request.POST.get("count", 10))
    with transaction.atomic():
        users = User.objects.bulk_create(
            [User(email=f"{prefix}-{i}@example.com") for i in range(count)]
        )
        User.objects.filter(email__startswith=f"{prefix}-").update(
            keyword_searches_this_month=F("keyword_searches_this_month") + 1
        )
    return JsonResponse({"created": len(users)})


urlpatterns = [
    path("_probe/ping", ping),
    path("_probe/read", read),
    path("_probe/find", find),
    path("_probe/write", write),
    path("_probe/raw-write", raw_write),
    path("_probe/atomic", atomic),
    path("_probe/sign-in", sign_in),
    path("_probe/iterate", iterate),
    path("_probe/lock", lock),
    path("_probe/bulk", bulk),
    path("", include("config.urls")),
]
