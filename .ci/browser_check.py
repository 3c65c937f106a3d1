"""Drives Curtain's HTML pages in a real browser (Debian's Chromium through Playwright).

Usage: browser_check.py API_BASE TARGET_URL SCREENSHOT_DIR

Against a running curtain-api (embedded default), it shortens TARGET_URL through the form on
`/`, follows the short link to the target, runs `GET /health` from Swagger UI's "Try it out" on
`/docs`, opens `/admin/queues` (and waits for it to refresh itself) and the link page
`/ui/links/<code>` (its chart drawn), then a password link's form (a wrong password refused,
the right one lands), and saves a screenshot of each page. It fails on any
JavaScript console error or uncaught page error, on a missing element, or on a wrong value.
"""

import pathlib
import re
import sys

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 15_000


class Failure(Exception):
    pass


def main() -> int:
    base, target, shots = sys.argv[1].rstrip("/"), sys.argv[2], pathlib.Path(sys.argv[3])
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page = context.new_page()
        page.on(
            "console",
            lambda m: m.type == "error"
            and problems.append(f"console error on {page.url}: {m.text} ({m.location.get('url')})"),
        )
        page.on("pageerror", lambda e: problems.append(f"page error on {page.url}: {e}"))

        def shot(name):
            path = shots / f"{name}.png"
            page.screenshot(path=str(path))
            print(f"screenshot {path}")

        # 1. The shorten form: the htmx fragment shows the short link.
        page.goto(f"{base}/")
        expect(page.locator("h1")).to_have_text("Curtain")
        page.fill("input[name=original_url]", target)
        page.fill("input[name=title]", "Browser check")
        page.click("button[type=submit]")
        message = page.locator("#message.success")
        expect(message).to_contain_text("Short URL ready!")
        href = message.locator("a").first.get_attribute("href") or ""
        found = re.search(r"/r/([0-9A-Za-z]+)$", href)
        if not found:
            raise Failure(f"no short link in the form's answer: {href!r}")
        code = found.group(1)
        print(f"shortened {target} as {code}")
        shot("home")

        # 2. The redirect lands on the target.
        page.goto(f"{base}/r/{code}")
        expect(page.locator("#landed")).to_have_text("Landed")
        if page.url != target:
            raise Failure(f"the redirect landed on {page.url}, not {target}")
        print(f"/r/{code} landed on {page.url}")

        # 3. Swagger UI: try GET /health out and see its 200.
        page.goto(f"{base}/docs")
        health = page.locator(".opblock.opblock-get", has=page.locator('[data-path="/health"]'))
        expect(health).to_have_count(1)
        health.locator(".opblock-summary").first.click()
        health.locator("button.try-out__btn").click()
        health.locator("button.execute").click()
        status = health.locator(".live-responses-table .response .response-col_status").first
        expect(status).to_have_text("200")
        expect(health.locator(".live-responses-table .microlight").first).to_contain_text('"status"')
        status.scroll_into_view_if_needed()
        print("Swagger UI: GET /health executed, 200")
        shot("docs")

        # 4. The queue page: the click queue's numbers, refreshed in place by htmx.
        page.goto(f"{base}/admin/queues")
        clicks = page.locator("tr#queue-clicks")
        expect(clicks).to_have_count(1)
        expect(clicks.locator('td[data-state="ready"]')).to_have_text("0")
        expect(clicks.locator('td[data-window="5"] [data-field="completed"]')).to_have_text("1")
        expect(clicks.locator('[data-field="workers-alive"]')).to_have_text("1")
        expect(page.locator("tr#queue-warming")).to_have_count(1)
        expect(page.locator("tr#queue-alerts")).to_have_count(1)
        first_read = page.locator("#read-at").inner_text()
        expect(page.locator("#read-at")).not_to_have_text(first_read, timeout=12_000)
        print("queue page: clicks completed 1, refreshed itself")
        shot("queues")

        # 5. The link page: details, one click, the chart drawn.
        page.goto(f"{base}/ui/links/{code}")
        expect(page.locator("#code")).to_have_text(code)
        expect(page.locator("#total-clicks")).to_have_text("1")
        expect(page.locator("#chart svg#chart-svg")).to_have_count(1)
        bars = page.locator("#chart rect.bar")
        if bars.count() < 1:
            raise Failure("the chart has no bars")
        clicked = [b for b in bars.all() if (b.get_attribute("data-clicks") or "0") != "0"]
        if len(clicked) != 1 or clicked[0].get_attribute("data-clicks") != "1":
            raise Failure(f"the chart should show one hour with 1 click, shows {len(clicked)} hours with clicks")
        print("link page: 1 click, chart drawn")
        shot("link")

        # 6. A password link: the form, a wrong password said so, the right one lands.
        created = context.request.post(
            f"{base}/urls", data={"original_url": target, "password": "open sesame"}
        )
        if created.status != 201:
            raise Failure(f"creating a password link: {created.status} {created.text()}")
        locked = created.json()["short_code"]
        page.goto(f"{base}/r/{locked}")
        expect(page.locator("h1")).to_have_text("Password required")
        page.fill("input[name=password]", "open sesame?")
        page.click("button[type=submit]")
        expect(page.locator("#error")).to_have_text("Wrong password")
        # The wrong password's page is a 401, which Chromium reports on the console: exactly
        # that one report is expected (and required).
        refused = [p for p in problems if f"/r/{locked}/unlock" in p and "status of 401" in p]
        if len(refused) != 1:
            raise Failure(f"expected one console report of the wrong password's 401, got {refused}")
        problems.remove(refused[0])
        shot("password")
        page.fill("input[name=password]", "open sesame")
        page.click("button[type=submit]")
        expect(page.locator("#landed")).to_have_text("Landed")
        if page.url != target:
            raise Failure(f"the password link landed on {page.url}, not {target}")
        print(f"password link {locked}: the form, a wrong password refused, the right one landed")

        browser.close()
    if problems:
        raise Failure("; ".join(problems))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a Playwright timeout names the missing element
        print(f"browser check FAILED: {e}", file=sys.stderr)
        sys.exit(1)
