"""A real S3 protocol server for tests: moto's server on 127.0.0.1, stoppable and restartable on
the same port (its buckets live in the process, so they survive a restart, and a test that wants
none calls ``reset``)."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
from moto.server import ThreadedMotoServer

from offload_pipeline.demo.stack import free_port

# test-only credentials; the config names them as ${VAR}s, and no output may show them
ACCESS_KEY_ID = "offload-test-access-key-7f3a"
SECRET_ACCESS_KEY = "offload-test-secret-9c1e4b"
REGION = "us-east-1"
ENVIRONMENT = {
    "OFFLOAD_TEST_S3_ENDPOINT": "",  # set from the server's port
    "OFFLOAD_TEST_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "OFFLOAD_TEST_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "OFFLOAD_TEST_S3_REGION": REGION,
}
# the catalog properties of a warehouse on the server, every value from the environment
CATALOG_PROPERTIES = {
    "s3.endpoint": "${OFFLOAD_TEST_S3_ENDPOINT}",
    "s3.access-key-id": "${OFFLOAD_TEST_S3_ACCESS_KEY_ID}",
    "s3.secret-access-key": "${OFFLOAD_TEST_S3_SECRET_ACCESS_KEY}",
    "s3.region": "${OFFLOAD_TEST_S3_REGION}",
}


@dataclass
class S3Server:
    """moto's S3 server on a free loopback port."""

    port: int = field(default_factory=free_port)
    _server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        # one line per request otherwise
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer("127.0.0.1", self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Forget every bucket: moto keeps them per process, across servers and tests."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def client(self):  # noqa: ANN201 - boto3's client type is generated at runtime
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The objects of ``bucket`` under ``prefix``."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        # without the empty "directory" markers the PyArrow file system writes
        keys = (item["Key"] for page in pages for item in page.get("Contents", []))
        return sorted(key for key in keys if not key.endswith("/"))


@contextmanager
def serve_bucket(bucket: str, setenv: Callable[[str, str], None]) -> Iterator[S3Server]:
    """A fresh server holding one empty ``bucket``; ``setenv`` gets the ``${VAR}``s of
    ``CATALOG_PROPERTIES`` (pytest's ``monkeypatch.setenv``)."""
    server = S3Server().start()
    try:
        server.reset()
        for key, value in ENVIRONMENT.items():
            setenv(key, value or server.endpoint)
        server.client().create_bucket(Bucket=bucket)
        yield server
    finally:
        server.stop()
