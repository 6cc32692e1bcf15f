"""Live-push latency (issue 8 §3): webhook POST → frame on the assigned agent's websocket,
with 500 agent sockets connected (one per agent) and 100 messages/s flowing.

    eval $(bench/servers.sh start) && .venv/bin/python bench/live.py [--agents 500 --rates 25,50,100 --seconds 30]

Production topology on one machine: gunicorn (HTTP webhooks), Celery worker (processing),
daphne (websockets), channels-redis between them. Each message comes from the customer of a
conversation assigned to one of the connected agents; the latency of a message is the time
from just before its POST is sent to the arrival of the frame carrying its text. Also
reports frames lost (never arrived within 30 s of the end) and duplicated. The target rate
(100/s) comes last; lower rates first show the latency while processing keeps up.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import processes  # noqa: E402

common.django_setup()

import agents as bench_agents  # noqa: E402
from ingest import purge_queue, signed, whatsapp_payload  # noqa: E402

from channels_app.models import Inbox  # noqa: E402

HTTP_PORT = 8111
WS_PORT = 8112


def body_for(wa_id: str, token: str) -> bytes:
    return whatsapp_payload(wa_id, f"wamid.live{token}", f"live {token}")


async def connect_agents(cookies: list[dict], session) -> list:
    """One socket per agent, at most 50 handshakes in flight. `session` must have no connection
    limit: an open websocket holds its connector slot for its whole life, so aiohttp's default
    (100) made socket 101 wait forever (the "stall after ~100 sockets")."""
    semaphore = asyncio.Semaphore(50)

    async def one(cookie):
        async with semaphore:
            header = "; ".join(f"{k}={v}" for k, v in cookie.items())
            ws = await session.ws_connect(f"ws://127.0.0.1:{WS_PORT}/ws/agent/", origin=f"http://127.0.0.1:{WS_PORT}",
                                          headers={"Cookie": header}, heartbeat=None, max_msg_size=0)
            hello = await ws.receive_json(timeout=30)
            assert hello.get("type") == "hello", hello
            return ws

    sockets = await asyncio.gather(*(one(c) for c in cookies))
    return list(sockets)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of each server process and its children so far."""
    import psutil

    out = {}
    for name, pid in pids.items():
        proc = psutil.Process(pid)
        out[name] = sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])
    return out


async def run(pairs, cookies, rates: list[int], seconds: int, webhook_url: str, secret: bytes,
              pids: dict[str, int]) -> list[dict]:
    import aiohttp

    arrived: dict[str, float] = {}  # token → first arrival; tokens are unique across rates
    walls: dict[str, list[float]] = {}  # token → [wall clock sent, wall clock arrived]: the breakdown
    duplicated: list[str] = []

    async def reader(ws):
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            text = (data.get("message") or {}).get("content", "")
            if text.startswith("live "):
                token = text[5:]
                if token in arrived:
                    duplicated.append(token)
                else:
                    arrived[token] = time.perf_counter()
                    walls.setdefault(token, [0.0, 0.0])[1] = time.time()

    # Two sessions: websockets never release their connector slot (limit=0: unlimited), the
    # webhook POSTs get their own bounded keep-alive pool so they never queue behind sockets.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as ws_session, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        began = time.perf_counter()
        sockets = await connect_agents(cookies, ws_session)
        print(json.dumps({"agents_connected": len(sockets), "connect_seconds": round(time.perf_counter() - began, 2)}),
              flush=True)
        readers = [asyncio.create_task(reader(ws)) for ws in sockets]
        await asyncio.sleep(1)
        rows = []
        for rate in rates:
            before = cpu_seconds(pids)
            rows.append(await run_rate(session, arrived, walls, duplicated, pairs, rate, seconds, webhook_url, secret))
            rows[-1]["agents_connected"] = len(sockets)
            # CPU seconds per server over the rate's run and its wait for the last frames.
            rows[-1]["cpu_seconds"] = {k: round(v - before[k], 1) for k, v in cpu_seconds(pids).items()}
            rows[-1].update(await asyncio.to_thread(breakdown, walls, rows[-1].pop("tokens")))
            print(json.dumps(rows[-1]), flush=True)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    return rows


async def run_rate(session, arrived: dict[str, float], walls: dict[str, list[float]], duplicated: list[str], pairs,
                   rate: int, seconds: int,
                   webhook_url: str, secret: bytes) -> dict:
    import aiohttp

    sent_at: dict[str, float] = {}
    post_failures = 0

    async def post(token: str, body: bytes):
        nonlocal post_failures
        sent_at[token] = time.perf_counter()
        walls.setdefault(token, [0.0, 0.0])[0] = time.time()
        try:
            async with session.post(webhook_url, data=body, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": signed(body, secret)}) as resp:
                await resp.read()
                if resp.status != 200:
                    post_failures += 1
        except aiohttp.ClientError:
            post_failures += 1

    rng = random.Random(5)
    posts = []
    begin = time.perf_counter()
    for i in range(rate * seconds):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        _user, wa_id = pairs[rng.randrange(len(pairs))]
        token = f"{rate}.{i}-{time.time_ns()}"
        posts.append(asyncio.create_task(post(token, body_for(wa_id, token))))
    await asyncio.gather(*posts)
    deadline = time.perf_counter() + 30
    while any(t not in arrived for t in sent_at) and time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
    latencies = [arrived[t] - sent_at[t] for t in sent_at if t in arrived]
    return {"rate": rate, "seconds": seconds, "sent": len(sent_at),
            "post_failures": post_failures, "received": len(latencies), "lost": len(sent_at) - len(latencies),
            "duplicates": sum(1 for t in duplicated if t in sent_at), **common.summary_ms(latencies),
            "tokens": list(sent_at)}


def breakdown(walls: dict[str, list[float]], tokens: list[str]) -> dict:
    """Where the latency goes: POST sent → live event stored (ack + queue + Celery processing;
    `LiveEvent.created_at` is set in the processing transaction) and stored → frame received
    (commit, channel layer, daphne, socket). Same machine, same wall clock."""
    from channels_app.models import LiveEvent

    wanted = set(tokens)
    first = min(walls[t][0] for t in tokens)
    stored: dict[str, float] = {}
    rows = LiveEvent.objects.filter(event="channels.message.created", created_at__gte=_aware(first - 1))
    for payload, created_at in rows.values_list("payload", "created_at").iterator():
        text = ((payload or {}).get("message") or {}).get("content", "")
        if text.startswith("live ") and text[5:] in wanted:
            stored.setdefault(text[5:], created_at.timestamp())
    processed = [stored[t] - walls[t][0] for t in tokens if t in stored]
    pushed = [walls[t][1] - stored[t] for t in tokens if t in stored and walls[t][1]]
    # The bench servers are shared: live events this run did not cause (another benchmark's
    # messages, fanned out to these agents' team groups) compete for the same daphne and worker.
    others = LiveEvent.objects.filter(created_at__gte=_aware(first - 1)).count() - len(stored)
    return {"to_stored": common.summary_ms(processed), "stored_to_frame": common.summary_ms(pushed),
            "foreign_live_events": others}


def _aware(timestamp: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--rates", default="25,50,100", help="messages/s, one run each, on the same sockets")
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (daphne) inherit it
    purge_queue()  # nothing left by an earlier run may compete with these messages
    users = bench_agents.agents(args.agents)
    pairs = bench_agents.open_conversations(users)
    cookies = [bench_agents.session_cookie(u) for u in users]
    inbox = Inbox.objects.get(name="Bench whatsapp")
    url = f"http://127.0.0.1:{HTTP_PORT}/webhooks/whatsapp/{inbox.uuid}/"
    with processes.running(lambda: processes.gunicorn(HTTP_PORT), lambda: processes.daphne(WS_PORT),
                           processes.celery_worker) as procs:
        rates = [int(r) for r in args.rates.split(",")]
        cpu = dict(zip(("gunicorn", "daphne", "celery"), (p.pid for p in procs), strict=True))
        result = asyncio.run(run(pairs, cookies, rates, args.seconds, url, common.WHATSAPP_APP_SECRET.encode(), cpu))
    common.results_write("live", {"runs": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
