"""What other contexts use of retention: the client-data bundle (the exports context's
`client_data` kind) and the hooks a context registers its own retention and data with: a purger
for its rows past an organisation's retention, a part of the client's bundle, and what a client's
erasure scrubs. A context registers them from its own `retention.py`, imported with the jobs
(spotless.domain.registry.import_jobs), so the API and the workers both know them."""

from spotless.domain.retention.bundle import Part, bundle_chunks, bundle_rows, register_part
from spotless.domain.retention.erasure import register_scrub
from spotless.domain.retention.jobs import Purger, register_purger
from spotless.domain.retention.models import RetentionSettings

__all__ = [
    "Part",
    "Purger",
    "RetentionSettings",
    "bundle_chunks",
    "bundle_rows",
    "register_part",
    "register_purger",
    "register_scrub",
]
