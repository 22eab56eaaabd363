import re

import pytest
from django.core import mail

from accounts.models import User
from tests.jobs import jobs_run_queued

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_by_magic_link_in_a_real_browser(live_url, page):
    User.objects.create_user("e2e@example.com", name="Edith Twoe")

    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=email]", "e2e@example.com")
    page.click("text=Email me a sign-in link")
    page.wait_for_selector("text=Check your email")
    assert mail.outbox == []  # the page never waits for SMTP: a worker sends it

    jobs_run_queued()
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/accounts/magic/\S+", mail.outbox[0].body).group(0)
    page.goto(link)
    page.wait_for_selector("text=Sign in as e2e@example.com?")
    page.click("#confirm-sign-in")

    page.wait_for_selector("nav >> text=Edith Twoe")
    assert page.url.rstrip("/") == live_url
    assert page.locator("a[href='/accounts/login/']").count() == 0
    assert User.objects.get(email="e2e@example.com").last_login is not None
