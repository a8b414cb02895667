"""The metric contract and its pushes to a Prometheus Pushgateway. Never imports dagster."""
