"""dlt's BigQuery destination pointed at a BigQuery emulator, for
`cargo xtask bench bigquery`: PostgreSQL table -> dlt (pyarrow backend,
Parquet) -> load jobs. dlt cannot be given an endpoint, so the Google
client it makes is given one here, with anonymous credentials."""
import os
import sys
import time

endpoint = os.environ["BQ_ENDPOINT"]
import google.cloud.bigquery as bigquery
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

_init = bigquery.Client.__init__


def _client(self, project=None, credentials=None, *args, **kwargs):
    kwargs["client_options"] = ClientOptions(api_endpoint=endpoint)
    _init(self, project, *args, credentials=AnonymousCredentials(), **kwargs)


bigquery.Client.__init__ = _client

import dlt
from dlt.sources.sql_database import sql_table

pg_url, table, dataset, disposition = sys.argv[1:5]
started = time.time()
source = sql_table(credentials=pg_url, table=table, backend="pyarrow", chunk_size=100_000)
if disposition == "merge":
    source.apply_hints(primary_key="id")
pipeline = dlt.pipeline(
    pipeline_name=f"bench_{dataset}",
    destination=dlt.destinations.bigquery(location="US"),
    dataset_name=dataset,
    pipelines_dir=os.environ.get("DLT_PIPELINES_DIR", ".dlt-pipelines"),
)
info = pipeline.run(source, write_disposition=disposition, loader_file_format="parquet")
print(info, file=sys.stderr)
print(f"{time.time() - started:.2f}")
