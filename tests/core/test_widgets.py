"""core.widgets.Select writes exactly what Django's select templates write."""

import pytest
from django import forms

from core.widgets import Select
from searches.forms import SearchForm

CASES = [
    pytest.param(
        [("US", "United States"), ("GB", "U<K>&\"'")],
        "GB",
        {"id": "id_x", "required": True, "disabled": False, "data-x": 'a"b<'},
        id="escaped-label-and-boolean-attrs",
    ),
    pytest.param(
        [("g1", [(1, "one"), (2, "two")]), ("", [("", "none")]), (3, "three")],
        2,
        None,
        id="option-groups-and-integer-values",
    ),
    pytest.param([], None, {"class": "c"}, id="no-choices"),
    pytest.param([("a", "A"), ("b", "B")], ["a", "b"], None, id="no-value-match"),
]


@pytest.mark.parametrize(("choices", "value", "attrs"), CASES)
def test_select_html_is_djangos(choices, value, attrs):
    expected = forms.Select(choices=choices).render("name<", value, attrs)

    assert Select(choices=choices).render("name<", value, attrs) == expected


@pytest.mark.parametrize("data", [None, {"location": "GB", "language": "<x>"}])
def test_the_search_forms_selects_are_djangos_html(data):
    form = SearchForm(data=data)
    plain = SearchForm(data=data)
    for name in ("location", "language", "match_type"):
        assert isinstance(form.fields[name].widget, Select)
        plain.fields[name].widget = forms.Select(choices=form.fields[name].choices)

        assert str(form[name]) == str(plain[name])
