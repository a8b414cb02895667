"""The Iceberg side of the offload: catalog, schema mapping, the durable state and the commit."""
