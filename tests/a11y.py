"""What the browser tests ask of every page: no horizontal overflow and no axe
violations.

axe-core is vendored from npm (tests/vendor/axe-core, used by tests only). It is
evaluated through the DevTools protocol, which the page's strict
Content-Security-Policy does not govern, so pages are checked under their real
headers (no ``bypass_csp``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"

# Phone (small Android, iPhone) and laptop widths the issue names.
WIDTHS = (360, 390, 1366)


@cache
def _axe_source() -> str:
    return AXE_JS.read_text()


@cache
def _js(name: str) -> str:
    """A check written in JavaScript, from tests/js/<name>.js."""
    return (Path(__file__).parent / "js" / f"{name}.js").read_text()


def axe_violations(page, context: str = "document") -> list[str]:
    """axe's violations on the current page, or inside the element the CSS
    selector ``context`` names (every rule axe runs by default, any impact), one
    line each: rule, impact, help and the first targets."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    result = page.evaluate(
        "async (context) => (await axe.run(context === 'document' ? document : context,"
        " {resultTypes: ['violations']}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))",
        context,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}"
        for v in result
    ]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
    )


def widest_elements(page, limit: int = 3) -> list[str]:
    """The elements that stick out past the window's right edge: what to fix."""
    return page.evaluate(_js("widest_elements"), limit)


def page_defects(page) -> list[str]:
    """What axe does not check but issue #16 asks of every page: references
    (aria-describedby / aria-labelledby / label for) that name real ids, no
    inline on*="" handlers (a strict CSP would refuse them), a meta description,
    and a favicon link."""
    return page.evaluate(_js("page_defects"))
