from django import template

from apps_catalog.selectors import apps_recent_active

register = template.Library()


@register.inclusion_tag("apps_catalog/_recent_apps.html")
def recent_apps(limit: int = 6):
    """The newest ACTIVE apps, for the landing page (one query)."""
    return {"apps": apps_recent_active(limit=limit)}
