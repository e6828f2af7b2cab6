"""Sidekiq's Web UI as a browser uses it: pages, the Busy page's buttons, screenshots."""

from __future__ import annotations

import html as htmllib
import http.cookiejar
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "interop"
SCREENSHOT_TIMEOUT = 90  # seconds; chromium's first start on a cold 2-core box is slow
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--hide-scrollbars", "--window-size=1400,1000",
)  # fmt: skip
# 6.x/7.x csrf_tag: <input type='hidden' name='authenticity_token' value='...'/> (any quotes)
_TOKEN = re.compile(r"""name=["']authenticity_token["']\s+value=["']([^"']+)["']""")


class Browser:
    """Cookies kept across requests (the session holds 6/7's CSRF token), same-origin POSTs."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=15) as resp:
            assert resp.status == 200, f"GET {path}: {resp.status}"
            return str(resp.read().decode())

    def post_form(self, path: str, fields: dict[str, str]) -> int:
        """Submit a form on ``path`` as the page would: its authenticity_token (6.x, 7.x) with
        the session cookie from GETting the page, and Sec-Fetch-Site (8.x checks that)."""
        page = self.get(path)
        m = _TOKEN.search(page)
        data = dict(fields)
        if m:
            data["authenticity_token"] = htmllib.unescape(m.group(1))
        req = urllib.request.Request(
            self.base + path,
            data=urllib.parse.urlencode(data).encode(),
            headers={"Sec-Fetch-Site": "same-origin", "Referer": self.base + path},
            method="POST",
        )
        with self.opener.open(req, timeout=15) as resp:  # follows the redirect back to the page
            return int(resp.status)


def _cells(row: str) -> list[str]:
    """The text of each <td> in a table row, tags stripped, whitespace collapsed."""
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    return [" ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells]


def _row_containing(page: str, needle: str) -> str | None:
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        if needle in row:
            return str(row)
    return None


@dataclass
class ProcessRow:
    name: str  # hostname:pid, tag, labels, "quiet", queues (the first cell's text)
    threads: str
    busy: str
    has_quiet_button: bool


def process_row(page: str, identity: str) -> ProcessRow | None:
    """The Busy page's row for a process (found by its Quiet/Stop form's identity)."""
    row = _row_containing(page, f'value="{identity}"')
    if row is None:
        return None
    cells = _cells(row)
    return ProcessRow(cells[0], cells[3], cells[4], 'name="quiet"' in row)


def job_row(page: str, jid: str) -> list[str] | None:
    """The Busy page's Jobs row for ``jid``: process, TID, JID, queue, job, args, started."""
    row = _row_containing(page, jid)
    return _cells(row) if row is not None else None


def screenshot(url: str, name: str) -> Path | None:
    """A headless-Chromium PNG of ``url`` in ARTIFACTS; None if chromium is not installed."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / name
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="gokogeri-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url]
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=SCREENSHOT_TIMEOUT, check=False,
            env={**os.environ, "HOME": profile},
        )  # fmt: skip
    if res.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium exited {res.returncode}, no {out}:\n{res.stderr[-2000:]}")
    return out
