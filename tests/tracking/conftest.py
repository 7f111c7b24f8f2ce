"""A real MLflow tracking server (``mlflow server``, SQLite backend) on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One ``mlflow server`` process over ``folder``; stop and start it again on the same port and store."""

    folder: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        command = [
            str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
            "--default-artifact-root", str(self.folder / "artifacts"), "--workers", "1",
        ]
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.folder / 'server.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.uri}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError("mlflow server did not answer within 90 s")

    def kill(self) -> None:
        """SIGKILL the server and its workers: an outage, not a shutdown."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def new_server(folder: Path) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    return Server(folder, free_port())


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = new_server(tmp_path_factory.mktemp("mlflow")).start()
    yield server
    server.kill()


@pytest.fixture
def own_server(tmp_path):
    """A server this test may kill and restart."""
    server = new_server(tmp_path / "server")
    yield server
    server.kill()
