"""The connector's logic, natively, against a local API: `pytest`."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

import sluice
from sluice import testing

from app import Orders

RECORDS = [
    {"id": i, "name": f"n{i}", "updated_at": f"2024-01-0{i}T00:00:00Z"} for i in range(1, 7)
]


class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if self.headers.get("Authorization") != "Bearer s3cr3t":
            self.send_response(401)
            self.end_headers()
            return
        since = query.get("updated_since", [""])[0]
        rows = [r for r in RECORDS if r["updated_at"] > since]
        page = int(query.get("p", ["0"])[0])
        chunk = rows[page * 2 : page * 2 + 2]
        more = len(rows) > (page + 1) * 2
        nxt = f"/orders?p={page + 1}&updated_since={since}" if more else None
        body = json.dumps({"data": chunk, "links": {"next": nxt}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sluice.http.secrets["api_token"] = "s3cr3t"
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_reads_every_page_then_only_what_changed(api):
    first = testing.read(Orders, {"base_url": api})
    assert [r["id"] for r in first.rows] == [1, 2, 3, 4, 5, 6]
    assert first.states["all"] == {"updated_since": "2024-01-06T00:00:00Z"}
    again = testing.read(Orders, {"base_url": api}, states=first.states)
    assert again.rows == []


def test_a_refused_token_is_an_auth_error(api):
    sluice.http.secrets["api_token"] = "wrong"
    with pytest.raises(sluice.AuthError, match="401"):
        testing.read(Orders, {"base_url": api})
