"""Outgoing HTTP: the only way out of the sandbox.

Inside the component requests go through `wasi:http`, and the host lets
them through only to the hosts the job grants (`grants: {http: {hosts:
[...]}}`); `${secret:name}` in a header value is filled in by the host, so
the plugin never sees the secret. Natively (tests) they go through
`urllib`, with secrets from `sluice.http.secrets`.
"""

from __future__ import annotations

import json as _json
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from .errors import AuthError, ConfigError, DataError, TransientError

IN_WASM = sys.platform == "wasi"

#: Secrets for native runs: `${secret:name}` in a header becomes the value.
secrets: dict[str, str] = {}


@dataclass
class Response:
    status: int
    #: Header names in lower case; repeated headers joined by `, `.
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    url: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise DataError(f"{self.url} did not return JSON: {e}") from None

    def raise_for_status(self) -> "Response":
        """Raise the typed error a status means: 401/403 `AuthError`,
        408/429/5xx `TransientError` (retried), other 4xx `DataError`."""
        if self.status < 400:
            return self
        said = self.text[:500]
        message = f"{self.url} answered {self.status}: {said}"
        if self.status in (401, 403):
            raise AuthError(message)
        if self.status in (408, 429) or self.status >= 500:
            raise TransientError(message)
        raise DataError(message)


def get(url: str, params: dict | None = None, headers: dict | None = None, timeout: float | None = None) -> Response:
    return request("GET", url, params=params, headers=headers, timeout=timeout)


def post(
    url: str,
    json: Any = None,
    data: bytes | str | None = None,
    headers: dict | None = None,
    timeout: float | None = None,
) -> Response:
    headers = dict(headers or {})
    if json is not None:
        data = _json.dumps(json)
        headers.setdefault("content-type", "application/json")
    return request("POST", url, data=data, headers=headers, timeout=timeout)


def request(
    method: str,
    url: str,
    params: dict | None = None,
    data: bytes | str | None = None,
    headers: dict | None = None,
    timeout: float | None = None,
) -> Response:
    """Send one request and read the whole response."""
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params)
    body = data.encode() if isinstance(data, str) else (data or b"")
    headers = {str(k): str(v) for k, v in (headers or {}).items()}
    if IN_WASM:
        return _wasi_request(method.upper(), url, headers, body, timeout)
    return _native_request(method.upper(), url, headers, body, timeout)


def _native_request(method, url, headers, body, timeout) -> Response:
    import re
    import urllib.error
    import urllib.request

    def fill(value: str) -> str:
        def one(m):
            if m.group(1) not in secrets:
                raise ConfigError(f"secret `{m.group(1)}` is not set in sluice.http.secrets")
            return secrets[m.group(1)]

        return re.sub(r"\$\{secret:([^}]+)\}", one, value)

    req = urllib.request.Request(
        url, data=body or None, method=method, headers={k: fill(v) for k, v in headers.items()}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout or 30) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read(), url)
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read(), url)
    except (urllib.error.URLError, OSError) as e:
        raise TransientError(f"{method} {url}: {e}") from None


def _wasi_request(method, url, headers, body, timeout) -> Response:
    from componentize_py_types import Err, Ok
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as h

    parts = urlsplit(url)
    schemes = {"http": h.Scheme_Http(), "https": h.Scheme_Https()}
    if parts.scheme not in schemes:
        raise ConfigError(f"{url}: only http and https URLs")
    methods = {
        "GET": h.Method_Get(),
        "HEAD": h.Method_Head(),
        "POST": h.Method_Post(),
        "PUT": h.Method_Put(),
        "DELETE": h.Method_Delete(),
        "PATCH": h.Method_Patch(),
        "OPTIONS": h.Method_Options(),
    }
    fields = h.Fields.from_list([(k, v.encode()) for k, v in headers.items()])
    req = h.OutgoingRequest(fields)
    req.set_method(methods.get(method) or h.Method_Other(method))
    req.set_scheme(schemes[parts.scheme])
    req.set_authority(parts.netloc)
    req.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    options = None
    if timeout:
        options = h.RequestOptions()
        nanos = int(timeout * 1e9)
        options.set_connect_timeout(nanos)
        options.set_first_byte_timeout(nanos)
        options.set_between_bytes_timeout(nanos)
    out_body = req.body()
    try:
        future = outgoing_handler.handle(req, options)
    except Err as e:
        raise _refused(method, url, e.value) from None
    if body:
        with out_body.write() as stream:
            for start in range(0, len(body), 4096):
                stream.blocking_write_and_flush(body[start : start + 4096])
    h.OutgoingBody.finish(out_body, None)
    with future:
        with future.subscribe() as ready:
            ready.block()
        got = future.get()
    if got is None or isinstance(got, Err) or isinstance(got.value, Err):
        code = None if got is None or isinstance(got, Err) else got.value.value
        raise _refused(method, url, code)
    with got.value.value as resp:
        status = resp.status()
        with resp.headers() as fields:
            found: dict[str, list[str]] = {}
            for name, value in fields.entries():
                found.setdefault(name.lower(), []).append(value.decode("latin-1"))
        chunks = []
        with resp.consume() as incoming:
            with incoming.stream() as stream:
                while True:
                    try:
                        chunks.append(stream.blocking_read(1 << 16))
                    except Err as e:
                        if isinstance(e.value, streams.StreamError_Closed):
                            break
                        raise TransientError(f"{method} {url}: the response broke off") from None
    return Response(status, {k: ", ".join(v) for k, v in found.items()}, b"".join(chunks), url)


def _refused(method: str, url: str, code: Any) -> Exception:
    """The typed error for a request that got no response."""
    name = type(code).__name__.removeprefix("ErrorCode_") if code is not None else "no response"
    detail = getattr(code, "value", None)
    said = f"{name}: {detail}" if detail else name
    if name == "HttpRequestDenied":
        host = urlsplit(url).hostname
        return ConfigError(
            f"{method} {url} was refused by the host: `{host}` is not in this plugin's grants.http.hosts"
        )
    return TransientError(f"{method} {url} failed: {said}")
