"""What other contexts use of retention: the client-data bundle (the exports context's
`client_data` kind) and the hooks a context registers its own retention and data with."""

from spotless.domain.retention.bundle import Part, bundle_chunks, bundle_rows, register_part
from spotless.domain.retention.jobs import Purger, register_purger

__all__ = ["Part", "Purger", "bundle_chunks", "bundle_rows", "register_part", "register_purger"]
