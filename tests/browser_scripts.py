"""What the browser tests hand headless Chromium: its flags, and the scripts that play a
media file and fetch a byte range with the browser's own network stack."""

from __future__ import annotations

__all__ = ["CHROMIUM_FLAGS", "FETCH_JS", "PLAY_JS"]

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1280,900",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]

# Load ``src`` into a fresh media element, seek to ``target`` (a fraction of the duration),
# optionally play to the end, and report what the element saw. Bounded by ``limit_ms``.
PLAY_JS = """
const [src, fraction, playToEnd, limitMs, done] = arguments;
const tag = /[.](wav|weba)$/.test(src) ? 'audio' : 'video';
const el = document.createElement(tag);
el.muted = true;
el.preload = 'metadata';
const out = {events: []};
const ranges = (r) => Array.from({length: r.length}, (_, i) => [r.start(i), r.end(i)]);
const finish = (why) => {
  out.why = why; out.currentTime = el.currentTime; out.seekableAtEnd = ranges(el.seekable);
  out.error = el.error ? el.error.code : null;
  el.pause(); el.removeAttribute('src'); el.load(); el.remove();
  done(out);
};
const timer = setTimeout(() => finish('timeout'), limitMs);
el.onerror = () => { clearTimeout(timer); finish('error'); };
el.onloadedmetadata = () => {
  out.duration = el.duration;
  out.seekable = ranges(el.seekable);
  out.target = el.duration * fraction;
  el.onseeked = () => {
    out.seekedAt = el.currentTime;
    if (!playToEnd) { clearTimeout(timer); finish('seeked'); return; }
    el.onended = () => { out.ended = true; clearTimeout(timer); finish('ended'); };
    el.play().catch((e) => out.events.push('play: ' + e));
  };
  el.currentTime = out.target;
};
el.src = src;
document.body.appendChild(el);
"""

# Fetch a byte range with the browser's own network stack and hash it (SHA-256).
FETCH_JS = """
const [src, range, done] = arguments;
fetch(src, {headers: {Range: range}, cache: 'no-store'})
  .then(async (r) => {
    const body = await r.arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', body);
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0'));
    done({status: r.status, contentRange: r.headers.get('Content-Range'),
          length: body.byteLength, sha256: hex.join('')});
  })
  .catch((e) => done({error: String(e)}));
"""
