"""The hot paths: requests answered before FastAPI's middleware, router and dependency injection (together
they cost more than reading a chunk or rendering a small tile), when the caller is known from memory
(``known_caller``) and the answer needs nothing slow. Each answer is the route's own, with the headers
the app's middlewares would add (``headers``, for a request with or without an Origin); anything else (a
session cookie, a first request, any error) goes on to ``app`` and the route, which answers it in the usual
form. tests/test_http.py checks that both paths answer alike."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fairimage.api.deps import known_caller
from fairimage.model.governance.policy import Principal

Headers = Callable[[bool], list[tuple[bytes, bytes]]]


class HotPath:
    """Requests (``methods``) whose path one of ``paths`` matches, which ``answer`` answers at once (or
    None: pass on); the caller is looked up only for those."""

    paths: tuple[re.Pattern[str], ...] = ()
    methods: tuple[str, ...] = ("GET", "HEAD")

    def __init__(self, app: ASGIApp, headers: Headers) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.methods:
            for path in self.paths:
                found = path.fullmatch(scope["path"])
                if found is not None:
                    answer = self._answer(scope, found)
                    if answer is not None:
                        await answer(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope, found: re.Match[str]) -> Response | None:
        request = Request(scope)
        try:
            principal = known_caller(request)
            answer = None if principal is None else self.answer(request, principal, found)
        except Exception:  # a 404, a bad token, a failed read: the route answers (and logs) it as usual
            return None
        if answer is not None:
            answer.raw_headers.extend(self.headers("origin" in request.headers))
        return answer

    def answer(self, request: Request, principal: Principal, found: re.Match[str]) -> Response | None:
        raise NotImplementedError
