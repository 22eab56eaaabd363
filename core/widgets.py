"""Form widgets written out in Python, byte for byte what Django's templates give.

Django renders a ``<select>`` through the form renderer's templates: one
template include per option, each with its own context and the attributes'
loop. On the keyword search page the three selects were 0.6 ms of a 5.5 ms
page (``make bench``'s profile; measured with ``str(form["location"])``).
:class:`Select` builds the same HTML with ``format_html``; the HTML is tested
identical to Django's own for plain choices, option groups, boolean and
escaped attributes (tests/core/test_widgets.py).

A project template overriding ``django/forms/widgets/select.html`` or
``select_option.html`` would not apply to these widgets: there is none
(templates/ overrides only the admin's split date/time widget).
"""

from __future__ import annotations

import html

from django import forms
from django.utils.safestring import mark_safe

from core.formatting import escape_unless_safe


def _text(value) -> str:
    """``{{ value|stringformat:'s' }}``: plain text, so always escaped (even a
    SafeString)."""
    return html.escape(f"{value}")


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html: ``name="value"``, a bare ``name`` for
    True, nothing for False; values through ``stringformat:'s'``, so always
    escaped."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {escape_unless_safe(name)}")
        else:
            parts.append(f' {escape_unless_safe(name)}="{_text(value)}"')
    return "".join(parts)


def _option(option: dict) -> str:
    # select_option.html, with its file's trailing newline.
    return (
        f'<option value="{_text(option["value"])}"{_attrs(option["attrs"])}>'
        f"{escape_unless_safe(option['label'])}</option>\n"
    )


class Select(forms.Select):
    """``forms.Select`` rendered without templates (same HTML)."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [
            f'<select name="{escape_unless_safe(widget["name"])}"'
            f"{_attrs(widget['attrs'])}>"
        ]
        for group_name, group_choices, _index in widget["optgroups"]:
            if group_name:
                parts.append(f'\n  <optgroup label="{escape_unless_safe(group_name)}">')
            parts.extend(f"\n  {_option(option)}" for option in group_choices)
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        # Every value above went through escape/escape_unless_safe.
        return mark_safe("".join(parts))  # noqa: S308
