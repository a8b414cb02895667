"""The Iceberg catalog: opened lazily with a short retry, tables loaded or created on first use.

Opening a new SQL catalog creates its tables, and two processes creating one table (or its
namespace) at once collide; both races are retried, since the winner's result is as good as ours.
"""

from __future__ import annotations

import time
from functools import cached_property

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from offload_pipeline.config import CatalogSpec, TableSpec
from offload_pipeline.core.iceberg.schema import SchemaChange, evolve, schema_changes, table_layout
from offload_pipeline.core.iceberg.state import creation_properties
from offload_pipeline.errors import CatalogUnavailableError, first_line


class IcebergCatalog:
    """The configured Iceberg catalog, opened on first use."""

    def __init__(self, catalog: CatalogSpec) -> None:
        self.spec = catalog

    @cached_property
    def client(self) -> Catalog:
        """The pyiceberg catalog.

        Raises:
            CatalogUnavailableError: it cannot be opened.
        """
        # a few quick attempts: opening a new SQL catalog creates its tables, and two processes
        # doing that at once collide (the loser finds the tables already there on retry)
        for attempt in (1, 2):
            try:
                return load_catalog(self.spec.name, **self.spec.properties)
            except Exception:  # noqa: BLE001 - the last attempt below reports it
                time.sleep(0.2 * attempt)
        try:
            return load_catalog(self.spec.name, **self.spec.properties)
        except Exception as e:
            raise CatalogUnavailableError(
                f"catalog '{self.spec.name}' ({self.spec.properties.get('type')}): "
                f"cannot open: {first_line(e)}"
            ) from e

    def load(self, spec: TableSpec) -> Table | None:
        """The table, or None when it was never created."""
        try:
            return self.client.load_table(spec.iceberg_identifier)
        except NoSuchTableError:
            return None
        except CatalogUnavailableError:
            raise
        except Exception as e:
            raise CatalogUnavailableError(
                f"table '{spec.name}': cannot load {spec.iceberg_identifier}: {e}"
            ) from e

    def prepare_table(
        self, spec: TableSpec, arrow_schema: pa.Schema
    ) -> tuple[Table, tuple[SchemaChange, ...]]:
        """Load or create the table and evolve it to take the hot-tier schema.

        Returns the table ready for writing and the changes applied to its schema.

        Raises:
            SchemaMismatchError: the hot tier changed in a way that is not applied.
            CatalogUnavailableError: the table cannot be loaded or created.
        """
        table = self.load(spec)
        if table is None:
            return self._create(spec, arrow_schema), ()
        added = schema_changes(spec, table, arrow_schema)
        if not added:
            return table, ()
        evolve(spec, table, added)
        return self.client.load_table(spec.iceberg_identifier), added

    def _create(self, spec: TableSpec, arrow_schema: pa.Schema) -> Table:
        layout = table_layout(spec, arrow_schema)
        error: Exception | None = None
        for attempt in range(3):
            try:
                if not self.client.namespace_exists(spec.namespace):
                    self.client.create_namespace(spec.namespace)
                return self.client.create_table(
                    spec.iceberg_identifier,
                    schema=layout.schema,
                    partition_spec=layout.partition_spec,
                    sort_order=layout.sort_order,
                    properties=creation_properties(spec),
                )
            except Exception as e:  # noqa: BLE001 - decided below
                # another process may be creating the namespace or the table at the same moment
                # (catalogs report that race in different ways): theirs is as good as ours, and
                # a half-finished namespace is there on the next attempt
                error = e
                table = self.load(spec)
                if table is not None:
                    return table
                time.sleep(0.2 * (attempt + 1))
        raise CatalogUnavailableError(
            f"table '{spec.name}': cannot create {spec.iceberg_identifier}: {error}"
        ) from error
