"""Save screenshots of the main screens to docs/screenshots/ (linked from the README).

Usage: start the platform (`make run`), then `.venv/bin/python bin/screenshots.py [BASE_URL]`.
Drives Debian's Chromium through Playwright, signed in as the demo users.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
PASSWORD = "cx-demo-2026"

SCREENS = [
    # (file, email, path)
    ("sign-in.png", None, "/accounts/login/"),
    ("agent-home.png", "agent1@demo.cxplatform.test", "/"),
    ("supervisor-home.png", "supervisor@demo.cxplatform.test", "/"),
    ("customers.png", "agent1@demo.cxplatform.test", "/customers/"),
    ("conversations.png", "supervisor@demo.cxplatform.test", "/inbox/"),
    ("conversation.png", "supervisor@demo.cxplatform.test", "FIRST_CONVERSATION"),
    ("webchat-snippets.png", "supervisor@demo.cxplatform.test", "/inbox/webchat/"),
    ("widget-demo.png", "supervisor@demo.cxplatform.test", "WIDGET_DEMO"),
    ("admin.png", "admin@demo.cxplatform.test", "/admin/"),
    ("api-docs.png", "admin@demo.cxplatform.test", "/api/docs/"),
]


def main(base_url: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        for filename, email, path in SCREENS:
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            page = context.new_page()
            if email:
                page.goto(f"{base_url}/accounts/login/")
                page.get_by_label("Email").fill(email)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign In").click()
                page.wait_for_load_state("networkidle")
            if path == "FIRST_CONVERSATION":
                page.goto(f"{base_url}/inbox/")
                link = page.locator("[data-conversation-link]").first
                path = link.get_attribute("href") if link.count() else "/inbox/0/"
            elif path == "WIDGET_DEMO":
                page.goto(f"{base_url}/inbox/webchat/")
                inbox = page.locator("[data-copy]").first
                uuid = page.locator("textarea").first.input_value().split('data-inbox="')[1][:36] if inbox.count() else ""
                path = f"/widget/demo/?inbox={uuid}"
            response = page.goto(f"{base_url}{path}")
            if response is None or response.status >= 400:
                print(f"skipped {filename}: {path} answered {response.status if response else 'nothing'}")
                context.close()
                continue
            page.wait_for_load_state("networkidle")
            if filename == "widget-demo.png":
                page.frame_locator("iframe[title='Chat with us']").get_by_role("button", name="Open chat").click()
                page.wait_for_timeout(800)
            page.screenshot(path=str(OUT / filename), full_page=False)
            print(f"saved docs/screenshots/{filename}")
            context.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
