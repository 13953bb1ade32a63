"""Plumbing for the benchmark: database and Redis set-up, pinned processes, CPU accounting, checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from redis import Redis
from stream import Expected

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- database and Redis ---------------------------------------------------------------------------
def recreate_database(admin_url: str, database_url: str, *, migrate: bool = True) -> None:
    """The bench database dropped (whoever is connected) and created empty; migrated unless told not to."""
    name = drop_database(admin_url, database_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if migrate:
        from plugin.schema import upgrade

        upgrade(database_url)


def drop_database(admin_url: str, database_url: str) -> str:
    """Drop the bench database if it exists; returns its name."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return name


def flush_redis(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def setup_workspace(database_url: str, *, shop_domain: str, secret: str, base_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A workspace with the default catalogue and ONE connection, Shopify, pointed at the stand-in."""
    from plugin import connections
    from plugin.config import Settings
    from plugin.db import make_engine, make_session_factory, transaction
    from plugin.secrets import SecretBox
    from plugin.workspaces import create_workspace

    settings = Settings(database_url=database_url, secret_key=os.environ["MILESTONES_SECRET_KEY"])
    engine = make_engine(database_url)
    box = SecretBox.from_key(settings.encryption_key, fallback_seed=settings.secret_key)
    try:
        with transaction(make_session_factory(engine)) as session:
            workspace, _ = create_workspace(session, "Bench Grocer", currency="USD")
            connection = connections.create_connection(
                session, box, workspace_id=workspace.id, platform="shopify", name="Shopify",
                settings={"shop_domain": shop_domain, "access_token": "shpat_bench", "api_secret": secret,
                          "base_url": base_url},
            )
            return workspace.id, connection.id
    finally:
        engine.dispose()


def sql(database_url: str, query: str, params: Any = None) -> list[tuple]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


# -- processes ------------------------------------------------------------------------------------
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


STARTED: list[Proc] = []  # stopped by stop_all() however the benchmark ends


def start(name: str, cmd: list[str], cpus: str, env: dict[str, str], log_dir: Path) -> Proc:
    log = log_dir / f"{name}.log"
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(["taskset", "-c", cpus, *cmd], env=env, stdout=handle, stderr=subprocess.STDOUT,
                                 cwd=REPO, start_new_session=True)
    proc = Proc(name, popen, log)
    STARTED.append(proc)
    return proc


def stop_all() -> None:
    for proc in STARTED:
        stop(proc)


def install_cleanup() -> None:
    """SIGTERM/SIGINT unwind normally (finally blocks run) and every started process is stopped."""
    import atexit

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    atexit.register(stop_all)


def stop(proc: Proc, timeout: float = 15.0) -> None:
    """SIGTERM the process we started (graceful for gunicorn and RQ), SIGKILL its group if it hangs."""
    if proc.popen.poll() is not None:
        return
    proc.popen.send_signal(signal.SIGTERM)
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.popen.pid, signal.SIGKILL)  # its own session, started above
        proc.popen.wait(5)


def wait_port(host: str, port: int, proc: Proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early; see {proc.log}")
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer on {host}:{port}; see {proc.log}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(BENCH_DIR), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


# -- CPU accounting -------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            tree[int(fields[1])].append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(tree.get(p, ()))
    return found


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK, sum(values[:8]) / CLK_TCK


class CpuMeter:
    """CPU seconds per group of processes over a phase, and what the rest of the machine used.

    Groups are callables returning pids, re-evaluated at the end too (pool connections to
    PostgreSQL open during the phase; a process absent at the start counts from zero).
    """

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups
        self.before: dict[int, float] = {}

    def _pids(self) -> dict[str, list[int]]:
        return {name: list(get()) for name, get in self.groups.items()}

    def __enter__(self) -> CpuMeter:
        self.before = {pid: proc_cpu(pid) for pids in self._pids().values() for pid in pids}
        self.machine_before = machine_busy()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.started
        busy, total = machine_busy()
        self.machine = busy - self.machine_before[0]
        self.used = {
            name: sum(max(0.0, proc_cpu(pid) - self.before.get(pid, 0.0)) for pid in pids)
            for name, pids in self._pids().items()
        }

    def summary(self) -> dict[str, float]:
        ours = sum(self.used.values())
        return {
            "wall_s": round(self.wall, 3),
            "machine_busy_cpus": round(self.machine / self.wall, 2),  # of 2
            **{f"{name}_cpus": round(v / self.wall, 2) for name, v in self.used.items()},
            "rest_cpus": round(max(0.0, self.machine - ours) / self.wall, 2),
            **{f"{name}_cpu_s": round(v, 3) for name, v in self.used.items()},
        }


def wait_for_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait`` s) until the rest of the machine uses under ``threshold`` CPUs.

    Other people's test runs on a 2-CPU machine move every figure; this returns the background
    load last seen (CPUs busy over one second) so the report can say what it ran against.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy()[0]
        time.sleep(1.0)
        busy = machine_busy()[0] - before
        if busy < threshold or time.monotonic() >= deadline:
            return round(busy, 2)


def settle(database_url: str, max_wait: float) -> float:
    """Before a timed phase: PostgreSQL's checkpoint of what the set-up wrote (a new database, a
    filled inbox) done now rather than in the middle of the measurement, then :func:`wait_for_quiet`."""
    sql(database_url, "CHECKPOINT")
    return wait_for_quiet(max_wait)


def pg_backends(database_url: str) -> list[int]:
    name = database_url.rsplit("/", 1)[1]
    try:
        rows = sql(database_url, "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                   (name,))
    except psycopg.Error:
        return []
    return [r[0] for r in rows]


# -- checking the outcome -------------------------------------------------------------------------
@dataclass
class Outcome:
    inbox: dict[str, int]
    effects: dict[tuple[str, str], int]
    problems: list[str] = field(default_factory=list)


def check_outcome(database_url: str, workspace_id: uuid.UUID, expected: Expected, expected_rows: int,
                  credit_calls: dict[tuple[str, str], int] | None) -> Outcome:
    ws = str(workspace_id)
    inbox = dict(sql(database_url, "SELECT status, count(*) FROM inbox GROUP BY status"))
    effects = {(k, s): n for k, s, n in sql(database_url, "SELECT kind, status, count(*) FROM effects GROUP BY 1, 2")}
    problems: list[str] = []
    if inbox.get("processed", 0) != expected_rows or sum(inbox.values()) != expected_rows:
        problems.append(f"inbox: expected {expected_rows} processed rows, found {inbox}")
        for error, n in sql(database_url, "SELECT left(error, 300), count(*) FROM inbox WHERE status = 'failed' "
                                          "GROUP BY 1 ORDER BY 2 DESC LIMIT 3"):
            problems.append(f"  {n} failed rows: {error}")

    ident = dict(sql(database_url,
                     "SELECT ci.external_id, ci.customer_id FROM customer_identities ci "
                     "JOIN customers c ON c.id = ci.customer_id WHERE c.workspace_id = %s", (ws,)))
    n_customers = sql(database_url, "SELECT count(*) FROM customers WHERE workspace_id = %s", (ws,))[0][0]
    if n_customers != len(expected.customers):
        problems.append(f"customers: expected {len(expected.customers)}, found {n_customers}")
    metrics: dict[Any, dict[str, Decimal]] = defaultdict(dict)
    for cid, metric, value in sql(database_url, "SELECT customer_id, metric, value FROM customer_metrics"):
        metrics[cid][metric] = value
    got_ms: dict[Any, list[str]] = defaultdict(list)
    for cid, key, occurrence, status in sql(
        database_url,
        "SELECT m.customer_id, d.key, m.occurrence, m.status FROM customer_milestones m "
        "JOIN milestone_definitions d ON d.id = m.definition_id WHERE m.workspace_id = %s", (ws,)):
        got_ms[cid].append(key)
        if occurrence != 1 or status == "historical":
            problems.append(f"milestone {key} of {cid}: occurrence {occurrence}, status {status}")
    for shop_id in sorted(expected.customers):
        cid = ident.get(str(shop_id))
        if cid is None:
            problems.append(f"customer {shop_id}: not found")
            continue
        count = metrics[cid].get("order_count", Decimal(0))
        spend = metrics[cid].get("lifetime_spend", Decimal(0))
        if count != expected.order_count[shop_id]:
            problems.append(f"customer {shop_id}: order_count {count}, expected {expected.order_count[shop_id]}")
        if spend != expected.spend[shop_id]:
            problems.append(f"customer {shop_id}: lifetime_spend {spend}, expected {expected.spend[shop_id]}")
        keys = got_ms.get(cid, [])
        if len(keys) != len(set(keys)) or set(keys) != expected.milestones[shop_id]:
            problems.append(f"customer {shop_id}: milestones {sorted(keys)}, expected {sorted(expected.milestones[shop_id])}")
    credit_effects = sum(n for (kind, _), n in effects.items() if kind == "store_credit")
    if credit_effects != expected.credits:
        problems.append(f"store_credit effects: {credit_effects}, expected {expected.credits}")
    unsettled = {k: n for k, n in effects.items() if k[1] in ("pending", "in_flight", "dead", "failed")}
    if unsettled:
        problems.append(f"effects not settled: {unsettled}")
    if credit_calls is not None:
        # Shopify is the only connection and it points at the stand-in: every effect that
        # succeeded made exactly one call there, and no call was made twice.
        calls = sum(credit_calls.values())
        succeeded = sum(n for (_, s), n in effects.items() if s == "succeeded")
        credits = sum(n for (op, _), n in credit_calls.items() if op == "storeCreditAccountCredit")
        if calls != succeeded or any(n != 1 for n in credit_calls.values()):
            problems.append(f"stand-in saw {calls} calls ({len(credit_calls)} distinct) for {succeeded} succeeded effects")
        if credits != expected.credits:
            problems.append(f"stand-in saw {credits} store credits, expected {expected.credits}")
    return Outcome(inbox, effects, problems)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
