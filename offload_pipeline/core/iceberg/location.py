"""What the warehouse holds at a table's location, whatever the catalog says about it.

A catalog entry only points at a table's newest metadata file; when the entry is lost, the metadata
and data files are still at the location. Creating a table there, or cleaning it, would then lose
the old table's data, so both look here first, and ``register`` takes the newest file back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyarrow import fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.io import FileIO, load_file_io
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table

from offload_pipeline.config import TableSpec
from offload_pipeline.core.iceberg.pyiceberg_internals import default_table_location, filesystem

log = logging.getLogger(__name__)

METADATA_SUFFIX = ".metadata.json"


@dataclass(frozen=True)
class Listing:
    """The files below a location, as its file system lists them."""

    scheme: str
    root: str
    """the location's path as the file system spells it, without a trailing slash"""
    files: tuple[pafs.FileInfo, ...]

    def location(self, info: pafs.FileInfo) -> str:
        """The location pyiceberg's FileIO takes for a listed file."""
        return info.path if self.scheme == "file" else f"{self.scheme}://{info.path}"


def list_files(io: FileIO, location: str, below: str = "") -> Listing | None:
    """Every file below ``location`` (or its ``below`` subdirectory); None when ``io`` cannot list.

    FileIO itself only opens and deletes single paths, so listing goes to the PyArrow file
    system behind pyiceberg's ``PyArrowFileIO``.
    """
    if not isinstance(io, PyArrowFileIO):
        return None
    scheme, netloc, root = PyArrowFileIO.parse_location(location, io.properties)
    root = root.rstrip("/")
    selector = pafs.FileSelector(
        f"{root}/{below}".rstrip("/"), recursive=True, allow_not_found=True
    )
    infos = filesystem(io, scheme, netloc).get_file_info(selector)
    files = tuple(info for info in infos if info.type == pafs.FileType.File)
    return Listing(scheme, root, files)


def metadata_version(location: str) -> int:
    """The version a metadata file's name starts with (``00042-<uuid>.metadata.json``), or -1."""
    prefix = _name(location).split("-", 1)[0]
    return int(prefix) if prefix.isdigit() else -1


def metadata_files(io: FileIO, location: str) -> list[str] | None:
    """The ``*.metadata.json`` files under ``location/metadata``, oldest version first; None when
    the file system cannot be listed."""
    listing = list_files(io, location, "metadata")
    if listing is None:
        return None
    # as URIs, the form catalogs store metadata locations in
    found = [
        f"{listing.scheme}://{f.path}" for f in listing.files if f.path.endswith(METADATA_SUFFIX)
    ]
    return sorted(found, key=lambda path: (metadata_version(path), path))


def new_table_location(catalog: Catalog, spec: TableSpec) -> str | None:
    """Where ``catalog`` puts ``spec``'s table when it creates it; None when the catalog decides
    elsewhere (e.g. a REST server)."""
    return default_table_location(catalog, spec.namespace, spec.iceberg_identifier.split(".")[-1])


def stranded_metadata(catalog: Catalog, spec: TableSpec) -> tuple[str, list[str]] | None:
    """The location of ``spec``'s table and the metadata files there, if it holds any.

    Called when the catalog has no entry for the table: metadata files at its location mean a
    table the catalog lost. None when the location is empty or cannot be known or listed.
    """
    location = new_table_location(catalog, spec)
    if location is None:
        log.debug("table %s: the catalog chooses the location; not checked", spec.name)
        return None
    files = metadata_files(load_file_io(catalog.properties, location), location)
    return (location, files) if files else None


def foreign_metadata(table: Table) -> list[str]:
    """Metadata files at ``table``'s location written for another table (another table uuid).

    Every table's history starts with one version-0 file, kept after it leaves the metadata log
    (maintenance never removes metadata files), so an unlogged version-0 file of another uuid
    means a second table was created at this location (the catalog lost the first one): only
    those few files are read.
    """
    files = metadata_files(table.io, table.location()) or []
    # file names are unique (a random uuid each), and free of how a location spells its scheme
    logged = {_name(entry.metadata_file) for entry in table.metadata.metadata_log}
    logged.add(_name(table.metadata_location))
    first = [path for path in files if metadata_version(path) == 0 and _name(path) not in logged]
    own = table.metadata.table_uuid
    return [
        path
        for path in first
        if FromInputFile.table_metadata(table.io.new_input(path)).table_uuid != own
    ]


def _name(location: str) -> str:
    return location.rsplit("/", 1)[-1]
