"""Orders from a REST/JSON API, written in Python.

- pages: each response is `{"data": [...], "links": {"next": URL or null}}`;
- auth: a bearer token from a job secret (`${secret:NAME}` in the header
  is filled in by the host: the plugin never sees the token);
- incremental: the largest `updated_at` read so far is the state; the next
  run asks only for `updated_since` it. Records come sorted by it, so a
  checkpoint after every page is safe to resume from.
"""

from dataclasses import dataclass, field
from urllib.parse import urljoin

import sluice


@dataclass
class Config:
    base_url: str = field(metadata={"description": "The API root, e.g. https://api.example.com/v1"})
    resource: str = "orders"
    token_secret: str = field(
        default="api_token", metadata={"description": "The job secret holding the bearer token"}
    )
    timeout: float = 30.0


FIELDS = [
    sluice.Field("id", "int64", nullable=False),
    sluice.Field("name", "string"),
    sluice.Field("updated_at", "timestamptz"),
]


class Orders(sluice.Source):
    name = "python-orders"
    description = "Orders from a paginated REST API (a Python example)"
    Config = Config
    capabilities = ["http"]

    def streams(self, config):
        return [
            sluice.Stream(
                config.resource,
                FIELDS,
                primary_key=["id"],
                cursor_fields=["updated_at"],
                incremental=True,
            )
        ]

    def check(self, config):
        self.get(config, self.first_url(config), None)

    def first_url(self, config):
        return f"{config.base_url.rstrip('/')}/{config.resource}"

    def get(self, config, url, since):
        headers = {"Authorization": f"Bearer ${{secret:{config.token_secret}}}"}
        params = {"updated_since": since} if since else None
        return sluice.http.get(url, params=params, headers=headers, timeout=config.timeout)

    def read(self, config, stream, partition, state):
        since = state["updated_since"] if state else None
        url = self.first_url(config)
        params_since = since
        pages = 0
        while url:
            page = self.get(config, url, params_since).raise_for_status().json()
            records = page.get("data")
            if not isinstance(records, list):
                raise sluice.DataError(f"{url}: no `data` array in the response")
            for record in records:
                yield {name: record.get(name) for name in ("id", "name", "updated_at")}
                if record.get("updated_at") and (since is None or record["updated_at"] > since):
                    since = record["updated_at"]
            pages += 1
            if since:
                yield sluice.Checkpoint({"updated_since": since})
            nxt = (page.get("links") or {}).get("next")
            # The next link already carries the query it needs.
            url, params_since = (urljoin(url, nxt), None) if nxt else (None, None)
        sluice.log.info(f"{stream.name}: {pages} pages, up to {since}")


sluice.export(Orders)
