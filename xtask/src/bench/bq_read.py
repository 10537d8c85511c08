"""A plain google-cloud-bigquery client reading a query's result into Parquet, for
`cargo xtask bench bigquery`: the query's result page by page (REST, no
Storage API, as Sluice's `read: results`), each page written as it comes."""
import os
import sys

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
import pyarrow.parquet as pq

query, out = sys.argv[1:3]
client = bigquery.Client(
    project="test-project",
    credentials=AnonymousCredentials(),
    client_options=ClientOptions(api_endpoint=os.environ["BQ_ENDPOINT"]),
)
rows = client.query(query).result(page_size=10_000)
writer = None
n = 0
for batch in rows.to_arrow_iterable(bqstorage_client=None):
    if writer is None:
        writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
    writer.write_batch(batch)
    n += batch.num_rows
if writer:
    writer.close()
print(n)
