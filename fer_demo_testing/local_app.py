"""Launch `python app.py` on a free loopback port: the benches and the tests run the app through this.

    with launched_app(env={"FER_TEST_LIMIT": "300"}) as server:
        Client(server.url) ...; server.rss_mb()

Only loopback addresses: the app binds 127.0.0.1, and `check_loopback` refuses
any other `--url` a bench is given.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from fer_demo.core.paths import LOCAL_DATASET, REPO_ROOT

HOST = "127.0.0.1"


class LaunchError(RuntimeError):
    """app.py exited or did not answer in time; the message ends with its log."""


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_loopback(url: str) -> str:
    """`url` if its host is a loopback address (127.0.0.0/8, ::1, localhost); ValueError otherwise."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise ValueError(f"refusing {url!r}: only loopback addresses (127.0.0.1, ::1, localhost) are allowed")


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process (VmRSS in /proc/<pid>/status) in MB, or None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass
class AppServer:
    url: str
    proc: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float | None:
        return rss_mb(self.proc.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def default_env(extra: dict | None = None) -> dict:
    """The environment the tests and benches run app.py in (the local FER2013 copy if present),
    updated with `extra`, where a None value removes that variable."""
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    if LOCAL_DATASET.exists():
        env.setdefault("FER_DATASET", str(LOCAL_DATASET))
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


@contextmanager
def launched_app(env: dict | None = None, args=(), log_path: str | Path | None = None,
                 timeout: float = 180.0, host: str = HOST, root: str | Path = REPO_ROOT, script: str = "app.py",
                 module: str | None = None):
    """Start `root`/`script` (this repo's app.py by default; any Gradio script that honours GRADIO_SERVER_PORT),
    or `python -m module` from `root` (a bench's app: `module="bench.noop_app"`), on a free port of `host`
    (loopback only), wait until it answers, yield an `AppServer`; stop it on exit.
    Raises `LaunchError` (with the log's tail) if it exits or is not up within `timeout`."""
    check_loopback(f"http://{host}/")
    port = free_port(host)
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix="fer-app-")) / "app.log"
    log_path = Path(log_path)
    env = dict(default_env(env), GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME=host)
    url = f"http://{host}:{port}/"
    with open(log_path, "w") as log:
        command = ("-m", module) if module else (script,)
        proc = subprocess.Popen([sys.executable, *command, *args], cwd=root, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        server = AppServer(url, proc, log_path)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise LaunchError(f"{module or script} exited with {proc.returncode}:\n{server.log_tail()}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise LaunchError(f"{module or script} did not answer on {url} within {timeout:.0f} s:\n"
                                      f"{server.log_tail()}")
                time.sleep(0.5)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
