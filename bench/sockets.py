"""Idle websockets one daphne process holds (issue 8 §4), and its memory per 1,000.

    eval $(bench/servers.sh start) && .venv/bin/python bench/sockets.py [--sockets 5000]

Opens authenticated agent sockets (real sessions, origin checked, group joins in Redis) to one
daphne process in steps of 1,000, measures the process's resident memory at each step, then
checks every socket still answers a ping.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import processes  # noqa: E402

common.django_setup()

import agents as bench_agents  # noqa: E402

WS_PORT = 8122


async def run(cookies: list[dict], step: int, pid: int) -> dict:
    import aiohttp

    steps = [{"sockets": 0, "rss_mib": processes.rss_mib(pid)}]
    sockets = []
    failures = 0
    semaphore = asyncio.Semaphore(64)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(cookie):
            nonlocal failures
            async with semaphore:
                header = "; ".join(f"{k}={v}" for k, v in cookie.items())
                try:
                    ws = await session.ws_connect(f"ws://127.0.0.1:{WS_PORT}/ws/agent/", origin=f"http://127.0.0.1:{WS_PORT}",
                                                  headers={"Cookie": header}, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=5))
                    hello = await ws.receive_json(timeout=60)
                    if hello.get("type") != "hello":
                        raise RuntimeError(hello)
                    return ws
                except Exception:
                    failures += 1
                    return None

        pongs: dict[object, asyncio.Queue] = {}

        async def reader(ws):
            """Read each socket as a browser does. aiohttp answers daphne's protocol pings (every
            20 s, closed after 30 s unanswered) only while the socket is read: unread, the
            sockets opened first were closed before the end (3,010 of 5,000 answered, twelfth
            session). Our own {"type": "pong"} replies go to the ping below."""
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data).get("type") == "pong":
                    pongs[ws].put_nowait(True)

        readers = []
        for start in range(0, len(cookies), step):
            batch = await asyncio.gather(*(one(c) for c in cookies[start:start + step]))
            for ws in batch:
                if ws is not None:
                    sockets.append(ws)
                    pongs[ws] = asyncio.Queue()
                    readers.append(asyncio.create_task(reader(ws)))
            await asyncio.sleep(2)
            steps.append({"sockets": len(sockets), "rss_mib": processes.rss_mib(pid)})
            print(json.dumps(steps[-1]), flush=True)

        async def ping(ws):
            await ws.send_json({"type": "ping"})
            return await asyncio.wait_for(pongs[ws].get(), timeout=60)

        alive = sum(1 for ok in await asyncio.gather(*(ping(ws) for ws in sockets), return_exceptions=True) if ok is True)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    top = steps[-1]
    per_1000 = (top["rss_mib"] - steps[0]["rss_mib"]) / (top["sockets"] / 1000) if top["sockets"] else None
    return {"steps": steps, "connect_failures": failures, "answered_ping": alive,
            "rss_mib_per_1000_sockets": round(per_1000, 1) if per_1000 else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--step", type=int, default=1000)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (daphne) inherit it
    # One agent per 10 sockets (agents keep several tabs open): 500 agents for 5,000 sockets.
    users = bench_agents.agents(max(1, args.sockets // 10))
    cookies = [bench_agents.session_cookie(users[i % len(users)]) for i in range(args.sockets)]
    with processes.running(lambda: processes.daphne(WS_PORT)) as (daphne,):
        result = asyncio.run(run(cookies, args.step, daphne.pid))
    print(json.dumps(result))
    common.results_write("sockets", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
