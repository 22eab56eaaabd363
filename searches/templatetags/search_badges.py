from django import template
from django.utils.safestring import mark_safe

from core.formatting import html_format, html_format_join

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


# One tag per history row and one for all the chart's bars, instead of a
# template variable (and a filter) per cell: the history page draws 50 rows
# of 6 cells and 30 bars of 5 attributes, and Django's per-variable lookup
# was a third of the page's time. The row's strings are made in the view
# (searches.views._history_rows_label); html_format (format_html without its
# lazy-string wrappers) escapes each of them.
_HISTORY_ROW = (
    "<tr>"
    '<td class="history-keywords"><div class="kw-line">'
    '<a href="{url}" title="{keywords_all}">{keywords_shown}</a>{more}</div></td>'
    '<td class="history-when" data-label="When">'
    '<time datetime="{when_iso}">{when}</time></td>'
    '<td class="num history-count" data-label="Keywords">{keyword_count}</td>'
    '<td class="num history-avg" data-label="Avg volume">{avg_label}</td>'
    '<td class="num history-total" data-label="Total volume">{total_label}</td>'
    '<td class="history-data" data-label="Data">{data}</td>'
    "</tr>"
)


@register.simple_tag
def history_row(row: dict):
    more = (
        html_format('<span class="muted">… and {} more</span>', row["more"])
        if row["more"]
        else ""
    )
    return html_format(
        _HISTORY_ROW,
        url=row["url"],
        keywords_all=row["keywords_all"],
        keywords_shown=row["keywords_shown"],
        more=more,
        when_iso=row["when_iso"],
        when=row["when"],
        keyword_count=row["keyword_count"],
        avg_label=row["avg_label"],
        total_label=row["total_label"],
        data=SAMPLE_BADGE if row["is_sample"] else "Live",
    )


@register.simple_tag
def day_chart_bars(bars):
    """The bars of a searches.charts.DailyChart (days with searches only), each
    with its day and count as a tooltip."""
    return html_format_join(
        "",
        '<rect class="chart-bar" x="{}%" y="{}%" width="{}%" height="{}%">'
        "<title>{}</title></rect>",
        (
            (
                f"{bar.x:.3f}",
                f"{bar.y:.3f}",
                f"{bar.width:.3f}",
                f"{bar.height:.3f}",
                bar.label,
            )
            for bar in bars
            if bar.count
        ),
    )
