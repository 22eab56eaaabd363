import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from tests.billing.factories import (
    PRICE_ENTERPRISE,
    PRICE_PRO,
    SECRET_KEY,
    WEBHOOK_SECRET,
)


@pytest.fixture
def stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_PRICE_PRO = PRICE_PRO
    settings.STRIPE_PRICE_ENTERPRISE = PRICE_ENTERPRISE
    return settings


@pytest.fixture
def no_stripe(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.STRIPE_PRICE_PRO = ""
    settings.STRIPE_PRICE_ENTERPRISE = ""
    return settings


class FakeStripeAPI:
    """What the local Stripe server received, and what it should answer next."""

    def __init__(self):
        self.requests: list[dict] = []
        self.error: tuple[int, dict] | None = None

    def last(self, path: str) -> dict:
        matching = [r for r in self.requests if r["path"] == path]
        assert matching, f"no request to {path}; got {self.requests}"
        return matching[-1]


def _handler_for(api: FakeStripeAPI):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            api.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization", ""),
                    "form": dict(parse_qsl(body, keep_blank_values=True)),
                }
            )
            if api.error is not None:
                status, payload = api.error
            elif self.path == "/v1/checkout/sessions":
                status, payload = (
                    200,
                    {
                        "id": "cs_test_local",
                        "object": "checkout.session",
                        "mode": "subscription",
                        "url": "https://checkout.stripe.com/c/pay/cs_test_local",
                    },
                )
            elif self.path == "/v1/customers":
                status, payload = (
                    200,
                    {"id": f"cus_test_local{len(api.requests)}", "object": "customer"},
                )
            elif self.path == "/v1/billing_portal/sessions":
                status, payload = (
                    200,
                    {
                        "id": "bps_test_local",
                        "object": "billing_portal.session",
                        "url": "https://billing.stripe.com/p/session/bps_test_local",
                    },
                )
            else:
                status, payload = (
                    404,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": f"Unrecognized request URL (POST: {self.path})",
                        }
                    },
                )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_test_local")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def stripe_api(stripe_settings):
    """A local HTTP server answering Stripe's API; STRIPE_API_BASE points at it."""
    api = FakeStripeAPI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{server.server_port}"
    yield api
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
