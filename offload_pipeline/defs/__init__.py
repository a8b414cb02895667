"""The Dagster layer: a thin adapter over the offload core. The only package importing dagster."""
