"""The Iceberg catalog: opened lazily with a short retry (creating the directories of a local one),
tables loaded or created on first use.

Opening a new SQL catalog creates its tables, and two processes creating one table (or its
namespace) at once collide; both races are retried, since the winner's result is as good as ours.
A table the catalog has no entry for is created only where no Iceberg metadata lies: otherwise
the catalog lost it, and ``register`` brings it back from its newest metadata file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from offload_pipeline.config import CatalogSpec, TableSpec
from offload_pipeline.core.iceberg.location import (
    metadata_version,
    new_table_location,
    stranded_metadata,
)
from offload_pipeline.core.iceberg.schema import SchemaChange, evolve, schema_changes, table_layout
from offload_pipeline.core.iceberg.state import creation_properties
from offload_pipeline.errors import (
    CatalogUnavailableError,
    ConfigInvalidError,
    LostTableError,
    WriteFailedError,
    first_line,
    scrub,
)

CREATION_GRACE_SECONDS = 5.0
"""how long a table whose location holds metadata but whose catalog entry is missing is given to
get its entry (a creator in progress) before it counts as lost"""


@dataclass(frozen=True)
class Registration:
    """The outcome of ``IcebergCatalog.register``."""

    table: Table
    metadata_location: str
    registered: bool
    """False when the catalog already had the table (nothing was changed)"""


def _warehouse_error(error: Exception) -> bool:
    """Whether ``error`` comes from the warehouse's file system (an object store that refuses or
    times out) rather than from a catalog's HTTP client, whose errors subclass ``OSError`` too.

    The warehouse is what a run writes to, so an unreachable one is ``write_failed`` wherever the
    run meets it first, reading the table's metadata included.
    """
    return isinstance(error, OSError) and type(error).__module__ == "builtins"


def _make_local_directories(catalog: CatalogSpec) -> None:
    """Create the directories of a SQLite catalog database and of a local warehouse.

    SQLite cannot create the directory of its database file, and its own error ("unable to open
    database file") does not say which path it tried.
    """
    uri = catalog.properties.get("uri", "")
    warehouse = catalog.properties.get("warehouse", "")
    wanted = []
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///:memory:"):
        wanted.append(("uri", Path(uri[len("sqlite:///") :].split("?")[0]).parent))
    if warehouse.startswith("file://"):
        wanted.append(("warehouse", Path(unquote(urlsplit(warehouse).path))))
    for key, directory in wanted:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigInvalidError(
                f"catalog.properties.{key}: cannot create directory {directory}: "
                f"{e.strerror or first_line(e)}"
            ) from e


class IcebergCatalog:
    """The configured Iceberg catalog, opened on first use."""

    def __init__(self, catalog: CatalogSpec) -> None:
        self.spec = catalog

    @cached_property
    def client(self) -> Catalog:
        """The pyiceberg catalog.

        Raises:
            CatalogUnavailableError: it cannot be opened.
            ConfigInvalidError: the directory of a local catalog or warehouse cannot be created.
        """
        _make_local_directories(self.spec)
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
                f"cannot open: {self._scrubbed(e)}"
            ) from None

    def _scrubbed(self, error: BaseException) -> str:
        """The first line of a catalog driver's error without the catalog's secrets; the error
        itself is never chained to ours, so its text reaches no log or event store."""
        return scrub(first_line(error), self.spec.secrets)

    def load(self, spec: TableSpec) -> Table | None:
        """The table, or None when it was never created.

        Raises:
            LostTableError: the catalog has no entry, but the table's location holds Iceberg
                metadata (the catalog lost the table: it must be registered, not re-created).
            CatalogUnavailableError: the catalog cannot be opened or the table loaded.
            WriteFailedError: the warehouse cannot be read (an object store that refuses).
        """
        table = self._load(spec)
        if table is not None:
            return table
        stranded = self._stranded(spec)
        if stranded is None:
            return None
        # a process creating the table writes its metadata before the catalog entry, and under
        # load the entry can take seconds to follow: only an entry still missing then is lost
        deadline = time.monotonic() + CREATION_GRACE_SECONDS
        while (table := self._load(spec)) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        if table is not None:
            return table
        location, files = stranded
        raise LostTableError(
            f"table '{spec.name}': the catalog has no entry for {spec.iceberg_identifier}, but its "
            f"location {location} holds Iceberg metadata ({len(files)} metadata file(s)): the "
            "catalog lost the table. Nothing was created or deleted; restore the entry with "
            f"`offload-pipeline register --table {spec.name}`"
        )

    def _stranded(self, spec: TableSpec) -> tuple[str, list[str]] | None:
        """``stranded_metadata`` of ``spec``; a location that cannot be listed is a catalog-side
        outage (retried), never "no table"."""
        try:
            return stranded_metadata(self.client, spec)
        except OSError as e:
            raise WriteFailedError(
                f"table '{spec.name}': cannot list the location of {spec.iceberg_identifier} in "
                f"the warehouse (the catalog has no entry; a lost one must not be re-created): "
                f"{self._scrubbed(e)}"
            ) from None

    def _load(self, spec: TableSpec) -> Table | None:
        try:
            return self.client.load_table(spec.iceberg_identifier)
        except NoSuchTableError:
            return None
        except (CatalogUnavailableError, ConfigInvalidError):
            raise
        except Exception as e:
            if _warehouse_error(e):
                raise WriteFailedError(
                    f"table '{spec.name}': cannot read the metadata of {spec.iceberg_identifier} "
                    f"from the warehouse: {self._scrubbed(e)}"
                ) from None
            raise CatalogUnavailableError(
                f"table '{spec.name}': cannot load {spec.iceberg_identifier}: {self._scrubbed(e)}"
            ) from None

    def register(self, spec: TableSpec, metadata_location: str | None = None) -> Registration:
        """Give ``spec``'s table back its catalog entry, pointing at its newest metadata file.

        Args:
            spec: the table.
            metadata_location: the metadata file to register; by default the newest version at
                the table's location (refused when two files share that version).

        Raises:
            ConfigInvalidError: nothing to register, or the newest file is ambiguous.
            CatalogUnavailableError: the catalog cannot be opened or written.
        """
        existing = self._load(spec)
        if existing is not None:
            return Registration(existing, existing.metadata_location, registered=False)
        if metadata_location is None:
            metadata_location = self._newest_metadata(spec)
        try:
            if not self.client.namespace_exists(spec.namespace):
                self.client.create_namespace(spec.namespace)
            table = self.client.register_table(spec.iceberg_identifier, metadata_location)
        except Exception as e:
            raise CatalogUnavailableError(
                f"table '{spec.name}': cannot register {spec.iceberg_identifier} from "
                f"{metadata_location}: {self._scrubbed(e)}"
            ) from None
        return Registration(table, metadata_location, registered=True)

    def _newest_metadata(self, spec: TableSpec) -> str:
        stranded = self._stranded(spec)
        if stranded is None:
            where = new_table_location(self.client, spec) or "a location the catalog chooses"
            raise ConfigInvalidError(
                f"table '{spec.name}': nothing to register: no Iceberg metadata file under "
                f"{where}/metadata (pass --metadata-file LOCATION)"
            )
        _location, files = stranded
        newest = [f for f in files if metadata_version(f) == metadata_version(files[-1])]
        if len(newest) > 1:
            # a commit that lost a race leaves a file of the winner's version behind
            raise ConfigInvalidError(
                f"table '{spec.name}': {len(newest)} metadata files share the newest version "
                f"{metadata_version(files[-1])}: {', '.join(newest)}; pass the one to register "
                "with --metadata-file"
            )
        return newest[0]

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
                table = self._load(spec)
                if table is not None:
                    return table
                time.sleep(0.2 * (attempt + 1))
        raise CatalogUnavailableError(
            f"table '{spec.name}': cannot create {spec.iceberg_identifier}: "
            f"{self._scrubbed(error) if error else 'unknown error'}"
        ) from None
