from django import template

from core.selectors import flag_enabled as _flag_enabled

register = template.Library()


@register.simple_tag(takes_context=True)
def flag_enabled(context, key):
    """``{% flag_enabled "new-search" as show_new_search %}`` for the current user."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return _flag_enabled(key, user)
