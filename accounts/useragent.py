"""A short, human label for a User-Agent string ("Firefox on Linux")."""

import re

_BROWSERS = (
    ("Edge", r"Edg(e|A|iOS)?/"),
    ("Opera", r"OPR/"),
    ("Chrome", r"(Chrome|CriOS|HeadlessChrome)/"),
    ("Firefox", r"(Firefox|FxiOS)/"),
    ("Safari", r"Safari/"),
    ("curl", r"^curl/"),
)
_SYSTEMS = (
    ("Android", r"Android"),
    ("iOS", r"iPhone|iPad|iPod"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux"),
)


def describe_user_agent(ua: str) -> str:
    if not ua:
        return "Unknown device"
    browser = next((name for name, rx in _BROWSERS if re.search(rx, ua)), None)
    system = next((name for name, rx in _SYSTEMS if re.search(rx, ua)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or ua[:60]
