from django import template
from django.utils.safestring import mark_safe

register = template.Library()

SAMPLE_BADGE = mark_safe(
    '<span class="badge sample" title="Made-up numbers from the offline sample '
    'provider, not real search data">Sample data</span>'
)


@register.simple_tag
def sample_badge():
    """The "Sample data" badge: a tag, not an include, as history draws it on
    most of its rows."""
    return SAMPLE_BADGE
