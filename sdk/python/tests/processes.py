"""Real processes for the tests: keygate (the built CLI), redis-server, and an ASGI app served by uvicorn.

Nothing is mocked: keygate is started as production starts it (`node dist/server/cli.js serve`) on ephemeral
ports, with the embedded store or a redis-server of its own on a free port. A missing tool fails the test with
what to install; it never skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

REPO = Path(__file__).resolve().parents[3]
CLI = REPO / "dist" / "server" / "cli.js"
ADMIN_TOKEN = "python-admin-token-0123456789"

# Fast webhook delivery for tests, and receivers on 127.0.0.1 allowed (as test/helpers/webhooks.ts does).
FAST_WEBHOOKS = {
    "enabled": True,
    "allowPrivateTargets": True,
    "pollIntervalMs": 50,
    "retryBaseMs": 100,
    "retryMaxMs": 400,
    "timeoutMs": 2000,
    "claimIdleMs": 2000,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def node() -> str:
    """A Node >= 22.15 (keygate's engines); .ci/run puts one on PATH."""
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("node is not on PATH: keygate's tests need Node >= 22.15 (.ci/run installs Node 24)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    if (major, minor) < (22, 15):
        raise RuntimeError(f"node {version} is too old for keygate (>= 22.15); .ci/run installs Node 24")
    return found


@dataclass
class Keygate:
    url: str
    ops_url: str
    proc: subprocess.Popen[bytes]
    _out: list[str]

    def output(self) -> str:
        return "".join(self._out)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextmanager
def keygate(
    *,
    upstream: str,
    redis_url: str | None = None,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Keygate]:
    """`keygate serve` on ephemeral ports; yields once both listeners are up; stopped (SIGTERM) afterwards."""
    if not CLI.exists():
        raise RuntimeError(f"{CLI} is missing: run `npm run build` first (.ci/run's npm test does)")
    with tempfile.TemporaryDirectory(prefix="keygate-py-") as tmp:
        # JSON is YAML: keygate reads it as its config file.
        cfg = {
            "server": {"port": 0, "opsPort": 0, "host": "127.0.0.1", "opsHost": "127.0.0.1"},
            "limits": {"failedAttempts": {"maxFailures": 1_000_000}},
            **(config or {}),
        }
        cfg_file = Path(tmp) / "config.yaml"
        cfg_file.write_text(json.dumps(cfg))
        proc_env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "KEYGATE_CONFIG": str(cfg_file),
            "KEYGATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "LOG_LEVEL": "info",
            "UPSTREAM_URL": upstream,
            **({"REDIS_URL": redis_url} if redis_url else {}),
            **(env or {}),
        }
        proc = subprocess.Popen(
            [node(), str(CLI), "serve"], cwd=REPO, env=proc_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        out: list[str] = []
        listening = threading.Event()
        ports: dict[str, int] = {}

        def read() -> None:
            assert proc.stdout is not None
            for line in iter(proc.stdout.readline, b""):
                out.append(line.decode("utf-8", "replace"))
                m = re.search(r'"port":(\d+),"opsPort":(\d+)', out[-1])
                if m and not listening.is_set():
                    ports.update(port=int(m.group(1)), ops=int(m.group(2)))
                    listening.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        kg = Keygate("", "", proc, out)
        try:
            deadline = time.monotonic() + 20
            while not listening.wait(0.05):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"keygate did not start (exit {proc.poll()}):\n{kg.output()}")
            kg.url = f"http://127.0.0.1:{ports['port']}"
            kg.ops_url = f"http://127.0.0.1:{ports['ops']}"
            yield kg
        finally:
            kg.stop()
            reader.join(5)
            if proc.stdout is not None:
                proc.stdout.close()


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of its own on a free port (never the machine's 6379); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (.ci/run installs it; or apt-get install redis-server)")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {port} did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """uvicorn serving `app` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
