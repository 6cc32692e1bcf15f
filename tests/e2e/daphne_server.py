"""A real daphne on a free loopback port, in its own process, on its own SQLite file.

Websockets need the ASGI server, and the in-memory channel layer only works inside one process,
so everything the browser does (widget posts, agent replies) is ingested by that process over
HTTP. The test process never touches that database except through `manage(...)` subprocesses
(seeding), so it cannot disagree with pytest-django's own test database.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SEED = r"""
import json
from accounts.demo import seed_demo_accounts
from accounts.models import Availability, User
from accounts.models import Team
from channels_app.models import InboxKind
from channels_app.services.inboxes import inbox_create
seed_demo_accounts()
User.objects.update(availability=Availability.OFFLINE)
inbox = inbox_create(name="Web chat e2e", kind=InboxKind.WEBCHAT, default_team=Team.objects.get(name="Sales"),
                     config={"allowed_origins": [ORIGIN], "identity_secret": "e2e-identity-secret-0123456789",
                             "greeting": "Halo! Ada yang bisa kami bantu?"})
print("SEED=" + json.dumps({"inbox": str(inbox.uuid)}))
"""


@dataclass
class LiveDaphne:
    url: str
    env: dict
    inbox: str

    def manage(self, code: str) -> str:
        return subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=ROOT, env=self.env,
                              check=True, capture_output=True, text=True, timeout=120).stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def daphne_server():
    workdir = tempfile.mkdtemp(prefix="cx-e2e-")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "cxplatform.settings.test",
        "DATABASE_URL": f"sqlite:///{workdir}/e2e.sqlite3",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONPATH": str(ROOT),
    })
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True,
                   timeout=300)
    seeded = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED.replace("ORIGIN", repr(url))], cwd=ROOT,
                            env=env, check=True, capture_output=True, text=True, timeout=120).stdout
    inbox = json.loads(seeded.split("SEED=", 1)[1].strip())["inbox"]
    log = open(Path(workdir) / "daphne.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "tests.e2e.asgi_app:application"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start; see {workdir}/daphne.log") from None
                time.sleep(0.2)
        yield LiveDaphne(url=url, env=env, inbox=inbox)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def sign_in(page, base_url: str, email: str, password: str = "cx-demo-2026"):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Your status").wait_for()
