"""Open an HTML report in headless Chromium (Debian's package; `.ci/run` installs it) and report what a reader
would see: the images and whether each loaded, the elements that stick out of a laptop-sized window, and the
page's errors (script errors, console.error, resources that failed to load)."""

from __future__ import annotations

import html as html_text
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

WINDOW = (1366, 768)  # a common laptop screen
# Runs before the page: records errors (capture phase also sees failed <img> loads) and, once the page has
# loaded, writes its findings into <pre id="browser-check"> for --dump-dom to return.
PROBE = """<script>
const errors = [];
window.addEventListener('error', e => errors.push(e.message || ('failed to load ' + (e.target.alt || e.target.src
  || e.target.tagName)).slice(0, 200)), true);
const consoleError = console.error;
console.error = (...args) => { errors.push(args.join(' ')); consoleError(...args); };
window.addEventListener('load', () => {
  const width = document.documentElement.clientWidth;
  const images = [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0,
    right: i.getBoundingClientRect().right}));
  const cut = [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > width + 1
    && !e.closest('table')).map(e => e.tagName + ' ' + (e.alt || e.id || e.textContent.slice(0, 40)));
  const out = document.createElement('pre');
  out.id = 'browser-check';
  out.textContent = JSON.stringify({width, scroll_width: document.documentElement.scrollWidth, images, cut, errors});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str | None:
    """The Chromium executable on PATH, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def open_in_browser(html: Path, timeout: float = 120) -> dict:
    """What headless Chromium finds on the page ``html`` at a laptop-sized window (a probed copy is opened)."""
    text = html.read_text()
    head = text.index("<head>") + len("<head>")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / html.name
        page.write_text(text[:head] + PROBE + text[head:])
        proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={tmp}/profile", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                               "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                              capture_output=True, text=True, timeout=timeout)
    dom = proc.stdout
    start = dom.find('<pre id="browser-check">')
    assert start >= 0, f"chromium returned no findings (exit {proc.returncode}): {proc.stderr[-2000:]}"
    found = dom[start + len('<pre id="browser-check">') : dom.index("</pre>", start)]
    return json.loads(html_text.unescape(found))


def problems(html: Path, expected_images: int) -> list[str]:
    """Everything wrong with the report page for a reader: missing or broken images (``expected_images``: the
    figures it must show), content cut off at the window's edge, page errors; [] when it reads well."""
    seen = open_in_browser(html)
    found = [f"{len(seen['images'])} images on the page, expected {expected_images}"] \
        if len(seen["images"]) != expected_images else []
    found += [f"image {i['alt']!r} did not load" for i in seen["images"] if not i["loaded"]]
    found += [f"image {i['alt']!r} cut off at {seen['width']} px" for i in seen["images"]
              if i["right"] > seen["width"] + 1]
    if seen["scroll_width"] > seen["width"]:
        found.append(f"the page is {seen['scroll_width']} px wide in a {seen['width']} px window: {seen['cut'][:5]}")
    return found + [f"page error: {e}" for e in seen["errors"]]
