"""A real local HTTP server standing in for Google's and GitHub's OAuth and API
endpoints (the only external HTTP in sign-in)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt


class FakeProviders:
    def __init__(self):
        self.routes: dict[str, tuple[int, dict | list]] = {}
        self.requests: list[tuple[str, str]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path = urlparse(self.path).path
                outer.requests.append((self.command, path, body))
                status, payload = outer.routes.get(path, (404, {"error": "nope"}))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args):
                pass

        return Handler

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # --- canned provider answers ---------------------------------------------

    def github_user(self, *, uid=101, login="octo", name="Octo Cat", emails=()):
        self.routes["/github/login/oauth/access_token"] = (
            200,
            {"access_token": "gh-token", "token_type": "bearer", "scope": "user:email"},
        )
        primary = next((e["email"] for e in emails if e.get("primary")), None)
        self.routes["/github/api/user"] = (
            200,
            {"id": uid, "login": login, "name": name, "email": primary},
        )
        self.routes["/github/api/user/emails"] = (200, list(emails))

    def google_user(self, *, client_id, sub="g-202", email, verified=True, name="G"):
        now = int(time.time())
        id_token = jwt.encode(
            {
                "iss": "https://accounts.google.com",
                "aud": client_id,
                "sub": sub,
                "email": email,
                "email_verified": verified,
                "name": name,
                "given_name": name.split()[0],
                "iat": now,
                "exp": now + 600,
            },
            "not-checked-when-fetched-over-tls",
            algorithm="HS256",
        )
        self.routes["/google/token"] = (
            200,
            {
                "access_token": "g-token",
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            },
        )


def state_from(location: str) -> str:
    return parse_qs(urlparse(location).query)["state"][0]
