import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache(db):
    # The database cache table is not flushed between tests (not even by
    # transactional ones), so cached results would leak from test to test.
    cache.clear()
    yield
    cache.clear()


def dataforseo_success(keywords, *, volume=1000):
    """A DataForSEO v3 google_ads/search_volume/live answer in its documented shape."""
    return {
        "version": "0.1.20250101",
        "status_code": 20000,
        "status_message": "Ok.",
        "time": "0.5 sec.",
        "cost": 0.075,
        "tasks_count": 1,
        "tasks_error": 0,
        "tasks": [
            {
                "id": "11221513-1535-0216-0000-4c4c0e0c1b1a",
                "status_code": 20000,
                "status_message": "Ok.",
                "time": "0.4 sec.",
                "cost": 0.075,
                "result_count": len(keywords),
                "path": ["v3", "keywords_data", "google_ads", "search_volume", "live"],
                "data": {
                    "api": "keywords_data",
                    "function": "search_volume",
                    "se": "google_ads",
                    "keywords": keywords,
                    "location_code": 2840,
                    "language_code": "en",
                },
                "result": [
                    {
                        "keyword": keyword,
                        "spell": None,
                        "location_code": 2840,
                        "language_code": "en",
                        "search_partners": False,
                        "competition": "HIGH" if i % 2 else "LOW",
                        "competition_index": 40 + i,
                        "search_volume": volume * (i + 1),
                        "low_top_of_page_bid": 1.2,
                        "high_top_of_page_bid": 5.4,
                        "cpc": 2.5 + i,
                        "monthly_searches": [
                            {"year": 2025, "month": 10, "search_volume": volume}
                        ],
                    }
                    for i, keyword in enumerate(keywords)
                ],
            }
        ],
    }


def dataforseo_error(status_code=40501, message="Invalid Field: 'keywords'."):
    return {
        "version": "0.1.20250101",
        "status_code": status_code,
        "status_message": message,
        "time": "0.01 sec.",
        "cost": 0,
        "tasks_count": 0,
        "tasks_error": 1,
        "tasks": [],
    }


class FakeDataForSEO:
    """A real HTTP server on 127.0.0.1 answering like DataForSEO.

    ``script`` is a list of answers used in order (the last one repeats):
    ``("json", http_status, body_or_None)`` where None means "echo a success
    for the posted keywords", or ``("sleep", seconds)``.
    """

    def __init__(self):
        self.script = [("json", 200, None)]
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                fake.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": body,
                    }
                )
                index = min(len(fake.requests) - 1, len(fake.script) - 1)
                step = fake.script[index]
                if step[0] == "sleep":
                    time.sleep(step[1])
                    status, payload = 200, dataforseo_success(body[0]["keywords"])
                else:
                    _, status, payload = step
                    if payload is None:
                        payload = dataforseo_success(body[0]["keywords"])
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dataforseo(settings):
    """DataForSEO pointed at a local server; fast timeouts and backoff."""
    with FakeDataForSEO() as fake:
        settings.KEYWORD_PROVIDER = "dataforseo"
        settings.DATAFORSEO_BASE_URL = fake.url
        settings.DATAFORSEO_LOGIN = "login@example.com"
        settings.DATAFORSEO_PASSWORD = "secret"
        settings.DATAFORSEO_TIMEOUT = 0.3
        settings.DATAFORSEO_RETRIES = 2
        settings.DATAFORSEO_BACKOFF = 0.01
        yield fake


class CountingProvider:
    """The sample provider, counting its calls."""

    name = "sample"
    batch_limit = 1000
    is_sample = True

    def __init__(self):
        from searches.providers import SampleProvider

        self.calls = []
        self._sample = SampleProvider()

    def search_keywords(self, keywords, location, language, match_type):
        self.calls.append(list(keywords))
        return self._sample.search_keywords(keywords, location, language, match_type)


class BrokenProvider:
    name = "broken"
    batch_limit = 1000
    is_sample = False

    def search_keywords(self, keywords, location, language, match_type):
        from searches.providers import ProviderError

        raise ProviderError("Keyword data is temporarily unavailable.")


@pytest.fixture
def broken_provider(settings, monkeypatch):
    from searches.providers import PROVIDERS

    monkeypatch.setitem(PROVIDERS, "broken", BrokenProvider)
    settings.KEYWORD_PROVIDER = "broken"
    return BrokenProvider
