"""Who may read the page: loopback by default, a token when served to other hosts.

On a loopback address the page answers only requests whose Host header names the
loopback (a web page elsewhere cannot reach it through a DNS name pointing at
127.0.0.1). Served to other hosts (`--allow-remote`), every request must carry the
token: in the address printed at start (`?token=...`, after which a cookie carries it),
or as `Authorization: Bearer TOKEN`.
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

COOKIE = "nasforge_dashboard"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host of a Host header, without its port ("[::1]:8080" -> "::1")."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def new_token() -> str:
    return secrets.token_urlsafe(24)


class AccessMiddleware:
    """ASGI middleware enforcing the rules above (pure ASGI: no buffering of responses)."""

    def __init__(self, app: Any, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is None:
            if not is_loopback(host_name(headers.get("host", ""))):
                await _refuse(send, 403, "this dashboard answers on the loopback address only")
                return
            await self.app(scope, receive, send)
            return
        given = self._given(scope, headers)
        if given is None or not secrets.compare_digest(given, self.token):
            await _refuse(
                send,
                401,
                "this dashboard needs its token: open the address that `nasforge dashboard` "
                "printed",
            )
            return
        await self.app(scope, receive, _with_cookie(send, self.token))

    @staticmethod
    def _given(scope: dict[str, Any], headers: dict[str, str]) -> str | None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0]
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no token
            return None
        return cookie[COOKIE].value if COOKIE in cookie else None


def _with_cookie(send: Any, token: str) -> Any:
    """Set the token cookie on every response, so the page's own requests carry it."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            value = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode())]
        await send(message)

    return sending


async def _refuse(send: Any, status: int, text: str) -> None:
    body = f"nasforge dashboard: {text}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
