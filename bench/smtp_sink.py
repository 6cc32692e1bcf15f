"""A local SMTP server for the peer benchmark: accepts every mail, keeps none, counts them.

    .venv/bin/python bench/smtp_sink.py PORT COUNT_FILE

Both products send their reply e-mails to it (bench/peer_helpdesk.py), so each does the whole
work of a reply, SMTP conversation included. The number of mails received so far is written
to COUNT_FILE after each one."""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class CountingSink:
    def __init__(self, count_file: Path) -> None:
        self.count = 0
        self.count_file = count_file
        count_file.write_text("0")

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        self.count += len(envelope.rcpt_tos)
        self.count_file.write_text(str(self.count))
        return "250 OK"


def main() -> int:
    port, count_file = int(sys.argv[1]), Path(sys.argv[2])
    controller = Controller(CountingSink(count_file), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
