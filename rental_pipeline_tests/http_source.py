"""A real HTTP server on loopback for the source tests: serves files, redirects, checks credentials
and records every request it gets (path and headers), so tests can see what was sent where."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    redirect: str | None = None  # Location of a 302
    require: dict[str, str] = field(default_factory=dict)  # header -> value, else 401
    require_query: str | None = None  # the exact query string, else 403
    stream: Callable[[], bytes] | None = None  # a body of unknown length, sent in chunks until it returns b""


class LoopbackHTTP:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (host header, path, headers)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                return

            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                path, _, query = self.path.partition("?")
                server.requests.append((self.headers.get("Host", ""), path, dict(self.headers)))
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                if any(self.headers.get(k) != v for k, v in route.require.items()):
                    self.send_error(401)
                    return
                if route.require_query is not None and query != route.require_query:
                    self.send_error(403)
                    return
                if route.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", route.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.stream is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        while chunk := route.stream():
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    return
                if "Content-Length" not in route.headers:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
