"""Start and stop the platform's production processes for a benchmark run.

    web (HTTP)   gunicorn cxplatform.wsgi, sync workers, persistent DB connections
    web (ASGI)   daphne cxplatform.asgi (websockets; also HTTP when measuring daphne)
    worker       celery -A cxplatform worker (prefork)

All on loopback, with `common.bench_env()` (production settings, PostgreSQL + Redis).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import common

BIN = Path(sys.executable).parent
LOGS = common.ROOT / "var" / "bench" / "logs"


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s (see {LOGS})")


def _start(name: str, argv: list[str], **env: str) -> subprocess.Popen:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = (LOGS / f"{name}.log").open("ab")
    return subprocess.Popen(argv, cwd=common.ROOT, env=common.bench_env(**env), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def gunicorn(port: int, workers: int | None = None) -> subprocess.Popen:
    """WSGI: one thread per process, so a persistent connection (no pool) is reused. Workers: one
    per core unless BENCH_GUNICORN_WORKERS says otherwise (to measure another count)."""
    workers = workers or int(os.environ.get("BENCH_GUNICORN_WORKERS") or os.cpu_count() or 2)
    proc = _start("gunicorn", [str(BIN / "gunicorn"), "cxplatform.wsgi:application", "-b", f"127.0.0.1:{port}",
                               "-w", str(workers), "--worker-class", "sync", "--backlog", "2048",
                               "--log-level", "warning"], DATABASE_POOL="false")
    wait_for_port(port)
    return proc


def daphne(port: int) -> subprocess.Popen:
    proc = _start(f"daphne-{port}", [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                                     "cxplatform.asgi:application"])
    wait_for_port(port)
    return proc


def celery_worker(concurrency: int = 2) -> subprocess.Popen:
    proc = _start("celery", [str(BIN / "celery"), "-A", "cxplatform", "worker", "--concurrency", str(concurrency),
                             "--loglevel", "WARNING", "--without-gossip", "--without-mingle"])
    time.sleep(3)
    return proc


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def strays() -> list[str]:
    """The platform's server processes already running (a worker left by an interrupted run):
    they would take part of the work and none of the measuring. One was found doing that."""
    import psutil

    ours = (str(BIN / "celery"), str(BIN / "gunicorn"), str(BIN / "daphne"))
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(arg in ours for arg in cmdline[:2]):
            found.append(f"{proc.info['pid']}: {' '.join(cmdline)}")
    return found


@contextlib.contextmanager
def running(*starters) -> Iterator[list[subprocess.Popen]]:
    left = strays()
    if left:
        raise SystemExit("platform processes are already running; stop them first (they would share the work "
                         "unmeasured):\n  " + "\n  ".join(left))
    procs: list[subprocess.Popen] = []
    try:
        for start in starters:
            procs.append(start())
        yield procs
    finally:
        stop(*procs)


@contextlib.contextmanager
def held(proc: subprocess.Popen) -> Iterator[None]:
    """Stop a process tree (SIGSTOP) for the block and let it go on after (SIGCONT): the worker
    held during a burst, as if it ran on another machine or were busy elsewhere, so that what the
    web tier alone acknowledges is measured; what it queued is processed once it goes on."""
    import psutil

    tree = [psutil.Process(proc.pid)]
    tree += tree[0].children(recursive=True)
    for member in tree:
        member.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGCONT)


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    import psutil

    proc = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)


def cpu_meter(procs: list[subprocess.Popen]):
    """A function returning the CPU seconds (user + system) used so far by `procs` and their live
    children: the servers' own cost per request, which holds up better than req/s on a busy box.
    The last entry is PostgreSQL's and Redis's (shared by both sides, reported apart: what each
    side's statements and commands cost the database servers)."""
    import psutil

    def tree(pid: int) -> float:
        total = 0.0
        try:
            parent = psutil.Process(pid)
            for p in [parent, *parent.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
        return total

    def databases() -> float:
        # The live processes, plus what each server's root process has reaped: backends of
        # closed connections, parallel query workers and autovacuum workers come and go, and a
        # sum over the live ones alone lost their CPU (or went backwards when one exited).
        total = 0.0
        for p in psutil.process_iter(["name", "ppid"]):
            name = p.info["name"]
            if name in ("postgres", "redis-server"):
                try:
                    times = p.cpu_times()
                    total += times.user + times.system
                    if psutil.Process(p.info["ppid"]).name() != name:  # the server's root process
                        total += times.children_user + times.children_system
                except psutil.NoSuchProcess:
                    pass
        return total

    def cpu() -> list[float]:
        return [*(tree(proc.pid) for proc in procs), databases()]

    return cpu


def cpu_per(before: list[float], after: list[float], n: int) -> dict:
    """CPU ms per unit: all servers, the web server alone (the first process started), and
    PostgreSQL + Redis (the last entry)."""
    if not n:
        return {}
    total = sum(after[:-1]) - sum(before[:-1])
    web = after[0] - before[0]
    db = after[-1] - before[-1]
    return {"server_cpu_ms": round(total * 1000 / n, 2), "web_cpu_ms": round(web * 1000 / n, 2),
            "db_cpu_ms": round(db * 1000 / n, 2)}
