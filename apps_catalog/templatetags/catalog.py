from django import template
from django.utils.safestring import mark_safe

from apps_catalog.selectors import apps_recent_active
from core.formatting import html_format

register = template.Library()


@register.inclusion_tag("apps_catalog/_recent_apps.html")
def recent_apps(limit: int = 6):
    """The newest ACTIVE apps, for the landing page (one query)."""
    return {"apps": apps_recent_active(limit=limit)}


# Badges are drawn once per row of the list pages: simple tags building the HTML
# directly cost a fraction of an {% include %} (a template and a context per row).


@register.simple_tag
def status_badge(status: str, label: str):
    return html_format('<span class="badge {}">{}</span>', status.lower(), label)


@register.simple_tag
def monetization_badges(models):
    """The app's pricing as badges ("No pricing yet" without any): monetization
    models, or their labels already made (selectors.explore_page)."""
    badges = [
        html_format(
            '<span class="badge">{}</span>',
            model if isinstance(model, str) else model.badge_label,
        )
        for model in models
    ]
    if not badges:
        return mark_safe('<span class="muted">No pricing yet</span>')
    return mark_safe(" ".join(badges))  # noqa: S308 - each part built by html_format
