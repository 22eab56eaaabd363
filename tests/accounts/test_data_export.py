"""Download my data: the request only queues a job; the job writes one JSON
archive of everything the user owns and mails its link; only its owner can
download it, for 7 days."""

import datetime as dt
import json
import os
import re

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.core import mail
from django.test import Client, TestCase
from django.utils import timezone

from accounts import hooks, selectors, services
from apps_catalog.models import Requirement
from core.models import AuditLog
from core.services import audit_log_record
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import (
    AppFactory,
    MonetizationModelFactory,
    PostFactory,
    RequirementFactory,
)
from tests.jobs import jobs_queued, jobs_run_queued
from tests.searches.factories import (
    APIUsageFactory,
    SavedSearchFactory,
    SearchHistoryFactory,
)

pytestmark = pytest.mark.django_db

BUILD = "accounts.data_export_build"
LINK_RE = re.compile(r"https?://[^\s]+(/account/data/[A-Za-z0-9]+/)")
SECTIONS = {
    "format",
    "generated_at",
    "profile",
    "email_addresses",
    "connected_accounts",
    "two_factor_methods",
    "sessions",
    "sign_in_links",
    "audit_log",
    "apps",
    "posts",
    "saved_searches",
    "search_history",
    "api_usage",
    "billing",
}


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.DATA_EXPORT_DIR = tmp_path / "exports"
    return settings.DATA_EXPORT_DIR


def _rows_of(user, *, tag: str):
    """One row of every kind a user can own, each carrying ``tag``."""
    app = AppFactory(owner=user, name=f"{tag} app", status="DRAFT")
    RequirementFactory(app=app, description=f"{tag} requirement")
    MonetizationModelFactory(app=app, subscription=True, features=[f"{tag} feature"])
    PostFactory(app=app, author=user, title=f"{tag} post", published=False)
    SavedSearchFactory(user=user, name=f"{tag} saved", keywords=[f"{tag} saved kw"])
    SearchHistoryFactory(user=user, keywords=[f"{tag} history kw"], user_agent=tag)
    APIUsageFactory(user=user, endpoint=f"/api/v1/{tag}/", user_agent=tag)
    account = SocialAccount.objects.create(user=user, provider="github", uid=tag)
    SocialToken.objects.create(account=account, token=f"{tag}-oauth-token-secret")
    audit_log_record(action=AuditLog.Action.PROFILE_UPDATED, actor=user, target=user)
    return app


def _request(client):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/account/data/")


def _build_and_mail() -> str:
    """Run the build job (and the mail it queues); the link's path."""
    jobs_run_queued()
    jobs_run_queued()
    (message,) = [m for m in mail.outbox if "data archive" in m.subject]
    return LINK_RE.search(message.body).group(1)


def test_the_request_only_queues_a_job(user_client, user, _export_dir):
    response = _request(user_client)

    assert response.status_code == 302
    assert response["Location"] == "/account/#data"
    (job,) = jobs_queued(task_name=BUILD)
    assert job.args["user_id"] == user.pk
    assert not _export_dir.exists()  # nothing built in the request
    assert mail.outbox == []
    assert b"Being prepared" in user_client.get("/account/").content


def test_a_second_request_while_one_waits_queues_nothing(user_client):
    _request(user_client)
    response = _request(user_client)

    assert response.status_code == 302
    assert len(jobs_queued(task_name=BUILD)) == 1


def test_the_request_needs_a_post_and_a_signed_in_user(user_client):
    assert user_client.get("/account/data/").status_code == 405
    assert Client().post("/account/data/").status_code == 302
    assert jobs_queued(task_name=BUILD) == []


def test_archive_holds_every_section_and_nothing_of_another_user(
    user_client, user, other_user
):
    app = _rows_of(user, tag="mine")
    _rows_of(other_user, tag="theirs")
    # Staff acting on the user: the row is the user's, the staff address is not.
    staff = UserFactory(role="ADMIN", email="staff.person@example.com")
    audit_log_record(action=AuditLog.Action.ROLE_CHANGED, actor=staff, target=user)

    _request(user_client)
    path = _build_and_mail()
    response = user_client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    raw = b"".join(response.streaming_content).decode()
    archive = json.loads(raw)
    assert set(archive) == SECTIONS
    assert archive["profile"]["email"] == user.email
    assert archive["profile"]["name"] == user.name
    (exported,) = archive["apps"]
    assert exported["id"] == app.pk and exported["status"] == "DRAFT"
    assert exported["requirements"][0]["description"] == "mine requirement"
    assert exported["requirements"][0]["status"] == Requirement.Status.PENDING
    assert exported["monetization_models"][0]["features"] == ["mine feature"]
    assert exported["monetization_models"][0]["price"] == "9.99"
    assert [p["title"] for p in archive["posts"]] == ["mine post"]
    assert [s["name"] for s in archive["saved_searches"]] == ["mine saved"]
    assert [h["keywords"] for h in archive["search_history"]] == [["mine history kw"]]
    assert [a["endpoint"] for a in archive["api_usage"]] == ["/api/v1/mine/"]
    assert archive["connected_accounts"] == [
        {
            "provider": "github",
            "uid": "mine",
            "date_joined": archive["connected_accounts"][0]["date_joined"],
            "last_login": archive["connected_accounts"][0]["last_login"],
        }
    ]
    assert archive["billing"]["tier"] == "FREE"
    assert {row["by"] for row in archive["audit_log"]} >= {"you", "staff"}
    # Nothing of anyone else, and no secret.
    assert "theirs" not in raw
    assert other_user.email not in raw and other_user.name not in raw
    assert "staff.person" not in raw
    assert "oauth-token-secret" not in raw


def test_another_user_cannot_download_it(user_client, other_user):
    _request(user_client)
    path = _build_and_mail()
    other = Client()
    other.force_login(other_user)

    assert other.get(path).status_code == 404
    assert user_client.get(path).status_code == 200


def test_download_asks_a_signed_out_visitor_to_sign_in(user_client):
    _request(user_client)
    path = _build_and_mail()

    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_unknown_or_malformed_archive_ids_are_404(user_client):
    assert user_client.get("/account/data/nosuchexport/").status_code == 404
    assert user_client.get("/account/data/..%2F..%2Fsecret/").status_code == 404


def test_an_expired_archive_is_gone_and_pruned(user_client, user, _export_dir):
    _request(user_client)
    path = _build_and_mail()
    (export,) = selectors.data_exports_of(user=user)
    eight_days_ago = (timezone.now() - dt.timedelta(days=8)).timestamp()
    os.utime(export.path, (eight_days_ago, eight_days_ago))

    assert user_client.get(path).status_code == 404
    assert selectors.data_exports_of(user=user) == []
    assert services.data_exports_prune() == {
        "expired archives": 1,
        "archives of deleted accounts": 0,
    }
    assert not export.path.exists()


def test_a_deleted_accounts_archives_are_pruned(user_client, user):
    _request(user_client)
    _build_and_mail()
    (export,) = selectors.data_exports_of(user=user)

    user_client.post("/account/delete/", {"confirm_email": user.email})

    assert services.data_exports_prune()["archives of deleted accounts"] == 1
    assert not export.path.parent.exists()


def test_account_page_lists_the_ready_archive(user_client, user):
    _request(user_client)
    path = _build_and_mail()

    page = user_client.get("/account/").content.decode()

    assert path in page
    assert "Being prepared" not in page


def test_the_job_is_safe_to_run_twice(user, _export_dir):
    first = services.data_export_build(
        user_id=user.pk, export_id="abc123", base_url="http://testserver/"
    )
    second = services.data_export_build(
        user_id=user.pk, export_id="abc123", base_url="http://testserver/"
    )

    assert first.startswith("built")
    assert second == "not built: already there"
    assert len(list((_export_dir / user.pk).iterdir())) == 1


def test_a_job_for_a_deleted_account_builds_nothing(_export_dir):
    result = services.data_export_build(
        user_id="gone", export_id="abc123", base_url="http://testserver/"
    )

    assert result == "not built: the account is gone"
    assert not _export_dir.exists()


def test_a_long_history_streams_into_a_valid_file(user):
    SearchHistoryFactory.create_batch(25, user=user)
    services.data_export_build(
        user_id=user.pk, export_id="long1", base_url="http://testserver/"
    )
    (export,) = selectors.data_exports_of(user=user)

    archive = json.loads(export.path.read_text())

    assert len(archive["search_history"]) == 25
    assert oct(export.path.stat().st_mode & 0o777) == "0o600"


def test_two_sections_cannot_share_a_name():
    def apps(*, user):
        return []

    with pytest.raises(ValueError, match="apps"):
        hooks.user_data_export_register("apps", apps)
