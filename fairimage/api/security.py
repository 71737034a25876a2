"""Security headers on every response, added by one small ASGI middleware (it touches only the response
start, so streamed zarr chunks pass through untouched).

Every response: ``X-Content-Type-Options: nosniff`` (a chunk is never sniffed into a script) and a
same-origin referrer policy. HTML pages also get a Content Security Policy without 'unsafe-inline': scripts
and styles come only from this server's files (the viewer's data is a JSON block, which is not run; colour
swatches are SVG attributes, not inline styles), nothing may frame the pages, and forms post only here.
'wasm-unsafe-eval' lets the viewer compile its WebAssembly decoders; blob: workers are how it decodes chunks
off the main thread. The image page with the viv viewer sets ``VIEWER_POLICY`` itself. FastAPI's own
/docs and /redoc pages load Swagger UI and ReDoc from a CDN, so they get a policy that admits it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The hash of an empty stylesheet: it admits only the empty <style> marker that stops OpenSeadragon from
# inserting its own inline rule (site.css carries that rule).
EMPTY_STYLE = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        f"style-src 'self' '{EMPTY_STYLE}'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
# viv's zarr codecs are Emscripten builds whose bindings make functions from strings (embind), so the
# image page with that viewer admits 'unsafe-eval' (still no inline script or style).
VIEWER_POLICY = PAGE_POLICY.replace("'wasm-unsafe-eval'", "'wasm-unsafe-eval' 'unsafe-eval'")
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "img-src 'self' data: https://fastapi.tiangolo.com",
        "font-src https://fonts.gstatic.com",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS = ("/docs", "/redoc")


# On every response.
EVERY_RESPONSE = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_RESPONSE:
                    headers[name] = value
                if headers.get("content-type", "").startswith("text/html"):
                    if "content-security-policy" not in headers:  # a page may set a stricter need
                        headers["Content-Security-Policy"] = DOCS_POLICY if docs else PAGE_POLICY
                    headers["X-Frame-Options"] = "DENY"
            await send(message)

        await self.app(scope, receive, send_with_headers)


MAX_BODY_BYTES = 1 << 20  # JSON bodies and forms; fairimage takes no uploads over HTTP


class BodyLimit:
    """Refuse request bodies over ``MAX_BODY_BYTES`` with 413, by Content-Length up front or by counting a
    chunked body as it arrives, so no request can make the server buffer without bound."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await _too_large(send)
            return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES and not refused:
                refused = True
                await _too_large(send)
                return {"type": "http.disconnect"}  # the app stops reading; what it answers is dropped
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


async def _too_large(send: Send) -> None:
    body = b'{"error": {"code": "too_large", "message": "the request body is over 1 MiB"}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
