"""The demo: a synthetic trade feed into the embedded hot tier and a local monitoring stack."""
