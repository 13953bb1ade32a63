"""``milestones demo`` without ``--no-serve``: the served app reads the demo's own database, Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

TOKEN = "serve-test-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the demo exited before serving"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"nothing answered {url} in {seconds} s")


def test_the_demo_serves_its_own_database_until_ctrl_c(tmp_path: Path) -> None:
    database = tmp_path / "served.sqlite3"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=f"sqlite:///{database}", MILESTONES_ADMIN_TOKEN=TOKEN)
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from plugin.cli import main; main()", "demo",
         "--customers", "4", "--years", "1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process)
        served = requests.get(
            f"http://127.0.0.1:{port}/api/milestones", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ).json()
        with sqlite3.connect(database) as db:
            stored = db.execute("SELECT count(*) FROM customer_milestones").fetchone()[0]
        assert served["total"] == stored > 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    printed = (tmp_path / "demo.log").read_text()
    assert f"Serving the app on the demo database at http://127.0.0.1:{port} (gunicorn). Ctrl-C stops it." in printed
    assert "Stopped." in printed
