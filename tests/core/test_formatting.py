"""The fast display helpers give exactly what the template filters they
replace give (core.formatting), and the list helpers built on them."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import connection
from django.template import Context, Template
from django.template.defaultfilters import truncatechars
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

from accounts.models import PUBLIC_NAME_FALLBACK, User
from accounts.selectors import public_name_sql
from apps_catalog.models import App, MonetizationModel, pricing_badge_label
from core.admin_tools import RelationsMixin, admin_change_url
from core.formatting import (
    date_label,
    datetime_label,
    html_format,
    html_format_join,
    iso_datetime,
    number_label,
    truncate_label,
    url_for_ids,
)
from core.pagination import peek_page
from tests.accounts.factories import UserFactory
from tests.apps_catalog.factories import AppFactory, MonetizationModelFactory

MOMENTS = [
    dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 27, 21, 14, 59, 123456, tzinfo=dt.UTC),
    dt.datetime(1999, 12, 31, 23, 59, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),  # a DST change in Europe
]


def _rendered(template: str, value) -> str:
    # In a template the date filter gets the value in the current time zone.
    return Template(template).render(Context({"v": value}))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns"])
def test_dates_read_as_the_date_filter_writes_them(zone):
    with timezone.override(zone):
        for moment in MOMENTS:
            assert date_label(moment) == _rendered('{{ v|date:"M j, Y" }}', moment)
            assert datetime_label(moment) == _rendered(
                '{{ v|date:"M j, Y H:i" }}', moment
            )
            assert iso_datetime(moment) == _rendered('{{ v|date:"c" }}', moment)


@pytest.mark.parametrize("value", [0, 7, 999, 1000, 12345, 1234567, 10**12, None])
def test_numbers_read_as_intcomma_writes_them(value):
    assert number_label(value) == ("" if value is None else intcomma(value))


@pytest.mark.parametrize(
    "text", ["", "short", "x" * 160, "y" * 161, "é" * 200, "word " * 50]
)
def test_truncation_matches_truncatechars(text):
    assert truncate_label(text, 160) == truncatechars(text, 160)


def test_row_urls_are_the_urls_reverse_gives():
    app_url = url_for_ids("app_detail")
    for pk in ("a" * 25, "z0123456789abcdefghijklmn"):
        assert app_url(pk) == reverse("app_detail", args=[pk])


@pytest.mark.django_db
def test_a_peek_page_reads_one_row_more_and_never_counts():
    AppFactory.create_batch(5)
    apps = App.objects.order_by("created_at", "id")

    with CaptureQueriesContext(connection) as ctx:
        first = peek_page(apps, "1", per_page=2)
    assert len(ctx.captured_queries) == 1
    assert "COUNT(" not in ctx.captured_queries[0]["sql"]
    assert [len(first), first.has_next(), first.has_previous()] == [2, True, False]

    last = peek_page(apps, 3, per_page=2)
    assert [len(last), last.has_next(), last.has_previous()] == [1, False, True]
    assert (last.start_index(), last.end_index()) == (5, 5)


@pytest.mark.django_db
@pytest.mark.parametrize("number", [None, "", "0", "-3", "abc", "1e3", "9" * 5000])
def test_a_peek_page_number_a_client_made_up_reads_page_one(number):
    AppFactory.create_batch(3)

    page = peek_page(App.objects.order_by("id"), number, per_page=2)

    assert page.number == 1 and len(page) == 2


@pytest.mark.django_db
def test_a_peek_page_past_the_end_or_the_limit():
    AppFactory.create_batch(3)
    apps = App.objects.order_by("id")

    # Past the last page: page 1 (one more query, only then).
    with CaptureQueriesContext(connection) as ctx:
        page = peek_page(apps, 40, per_page=2)
    assert (page.number, len(page), len(ctx.captured_queries)) == (1, 2, 2)

    # Pages stop at max_rows: no "Next" to a page beyond.
    page = peek_page(apps, 2, per_page=1, max_rows=2)
    assert (page.number, page.has_next()) == (2, False)
    assert peek_page(apps, 9, per_page=1, max_rows=2).number == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("Ada", "", ""),
        ("", "Ada", "Lovelace"),
        ("", "Ada", ""),
        ("", "", "Lovelace"),
        ("", "", ""),
        ("  ", "Ada", ""),
    ],
)
def test_the_public_name_in_sql_is_the_public_name(name, first, last):
    user = UserFactory(name=name, first_name=first, last_name=last)

    computed = (
        User.objects.filter(pk=user.pk).values_list(public_name_sql(), flat=True).get()
    )

    assert computed == user.public_name
    if not (name or first or last):
        assert computed == PUBLIC_NAME_FALLBACK


@pytest.mark.django_db
def test_a_pricing_label_from_a_row_is_the_models_label():
    models = [
        MonetizationModelFactory(),
        MonetizationModelFactory(subscription=True),
        MonetizationModelFactory(one_time=True),
        MonetizationModelFactory(type="USAGE_BASED", price=Decimal("10.00")),
    ]
    for model in models:
        old = model.get_type_display() + (
            f" · {model.price_label}" if model.price is not None else ""
        )
        # A JSON row carries the price as text (selectors._pricing_rows).
        text = None if model.price is None else str(model.price)
        assert model.badge_label == old
        assert pricing_badge_label(model.type, text, model.subscription_interval) == old
    assert pricing_badge_label("FREE", None, "") == "Free"
    assert MonetizationModel.Type.FREE.label == "Free"


@pytest.mark.django_db
def test_the_row_checkbox_is_djangos():
    app = AppFactory(name='Tom & "Jerry" <b>')
    model_admin = admin.site._registry[App]
    assert isinstance(model_admin, RelationsMixin)

    assert model_admin.action_checkbox(app) == admin.ModelAdmin.action_checkbox(
        model_admin, app
    )


@pytest.mark.django_db
def test_admin_change_urls_are_the_urls_reverse_gives():
    app = AppFactory()
    for pk in (app.pk, "with_underscore/and:colon"):
        assert admin_change_url(admin.site, App, pk) == reverse(
            "admin:apps_catalog_app_change",
            args=[admin.utils.quote(pk)],
        )
    assert admin_change_url(admin.site, App, None) is None


VALUES = [
    "plain",
    "<b>&\"'</b>",
    mark_safe("<i>safe</i>"),
    42,
    3.5,
    None,
    gettext_lazy("lazy <text>"),
    "",
]


@pytest.mark.parametrize("value", VALUES)
def test_html_format_is_format_html(value):
    template = '<a title="{}" data-x="{name}">{}</a>'

    ours = html_format(template, value, value, name=value)

    assert ours == format_html(template, value, value, name=value)
    assert isinstance(ours, SafeString)


def test_html_format_join_is_format_html_join():
    rows = [(v, v) for v in VALUES]

    for sep in ("", ", ", "<br>", mark_safe("<br>")):
        assert html_format_join(sep, "<p>{}|{}</p>", rows) == format_html_join(
            sep, "<p>{}|{}</p>", rows
        )
