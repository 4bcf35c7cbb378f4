"""Real uvicorn servers on 127.0.0.1 for end-to-end tests (started, killed, restarted)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from cds_service.settings import PROJECT_ROOT

# The protocol `make run` and the README's production command use: request heads bounded (431).
HTTP_PROTOCOL = "cds_service.transport.http_limits:BoundedHttpToolsProtocol"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    def __init__(self, env: Mapping[str, str], port: int, *, workers: int = 1) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "cds_service.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--http",
            HTTP_PROTOCOL,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"server exited early:\n{output}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server did not become ready")

    def kill(self) -> None:
        """SIGKILL the whole process group: no graceful shutdown, as in a crash."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def output(self) -> str:
        return self.process.stdout.read().decode() if self.process.stdout else ""


@contextmanager
def running_server(env: Mapping[str, str], *, port: int | None = None, workers: int = 1) -> Iterator[ServerProcess]:
    server = ServerProcess(env, port or free_port(), workers=workers)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()
