"""Template context every page needs from the platform layer."""

from core.views import theme_of


def theme(request):
    """``theme``: "light" or "dark" when the visitor chose one, "" to follow
    the operating system (base.html then sets no data-theme)."""
    return {"theme": theme_of(request)}
