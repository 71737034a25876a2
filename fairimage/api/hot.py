"""The hot paths: requests answered before FastAPI's middleware, router and dependency injection (together
they cost more than reading a chunk or rendering a small tile), when the caller is known from memory
(``known_caller``) and the answer needs nothing slow. Each answer is the route's own, with the headers
the app's middlewares would add (``headers``, for a request with or without an Origin); anything else (a
session cookie, a first request, any error) goes on to ``app`` and the route, which answers it in the usual
form. tests/test_http.py checks that both paths answer alike."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fairimage.api.deps import known_caller
from fairimage.model.governance.policy import Principal

Headers = Callable[[bool], list[tuple[bytes, bytes]]]


class HotPath:
    """Requests (``methods``) of paths under ``prefixes`` that ``answer`` answers at once (None: pass on)."""

    prefixes: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("GET", "HEAD")

    def __init__(self, app: ASGIApp, headers: Headers) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in self.methods
            and scope["path"].startswith(self.prefixes)
        ):
            found = self._answer(scope)
            if found is not None:
                await found(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        request = Request(scope)
        try:
            principal = known_caller(request)
            found = None if principal is None else self.answer(request, principal)
        except Exception:  # a 404, a bad token, a failed read: the route answers (and logs) it as usual
            return None
        if found is not None:
            found.raw_headers.extend(self.headers("origin" in request.headers))
        return found

    def answer(self, request: Request, principal: Principal) -> Response | None:
        raise NotImplementedError
