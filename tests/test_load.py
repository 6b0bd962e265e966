"""Load: wrk against gunicorn (gthread) with a rotating mix of range requests.

The Lua script sends, in turn on every connection, a single range, a suffix range, an
open-ended range, a multi-range, an unsatisfiable range and no range at all, over the three
body kinds of ``serverapps.app`` (file wrapper, generator, list). Every response is checked
in Lua (status, Content-Range, Content-Length against the body wrk received); a raw client
samples responses byte for byte while the load runs; the worker's RSS is compared before and
after.

Short form (the test suite): about 10 seconds. Long form (documented in docs/security.md)::

    RANGEWSGI_LOAD_SECONDS=60 RANGEWSGI_LOAD_CONNECTIONS=64 python -m pytest -s tests/test_load.py
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from media import need_tool
from server_configs.launch import launch, write_data
from support import RawClient, Server, free_port, parse_multipart

pytestmark = [pytest.mark.network, pytest.mark.slow]

SECONDS = int(os.environ.get("RANGEWSGI_LOAD_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("RANGEWSGI_LOAD_CONNECTIONS", "64"))
SIZE = 1 << 20
ROUTES = ["/file", "/gen", "/list"]
# (Range value or None, expected status, expected parts as (first, last) pairs)
MIX: list[tuple[str | None, int, list[tuple[int, int]]]] = [
    ("bytes=100-1099", 206, [(100, 1099)]),
    ("bytes=-500", 206, [(SIZE - 500, SIZE - 1)]),
    ("bytes=524288-", 206, [(524288, SIZE - 1)]),
    ("bytes=0-9,1000-1999,-10", 206, [(0, 9), (1000, 1999), (SIZE - 10, SIZE - 1)]),
    ("bytes=99999999-", 416, []),
    (None, 200, [(0, SIZE - 1)]),
]


def lua_script() -> str:
    """The wrk script: rotate requests, check every response, report totals from done()."""
    entries = []
    for route in ROUTES:
        for value, _, _ in MIX:
            headers = "{}" if value is None else '{["Range"] = "' + value + '"}'
            entries.append(f'{{"{route}", {headers}}}')
    singles = [f'["bytes {p[0][0]}-{p[0][1]}/{SIZE}"] = {p[0][1] - p[0][0] + 1}'
               for value, status, p in MIX if status == 206 and len(p) == 1]
    return f"""
local requests = {{ {", ".join(entries)} }}
local singles = {{ {", ".join(singles)} }}
local threads = {{}}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0; n200 = 0; n206 = 0; n416 = 0; multipart = 0
  counter = math.random(1, #requests)
end

function request()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  return wrk.format("GET", r[1], r[2])
end

function response(status, headers, body)
  local length = tonumber(headers["Content-Length"])
  if length == nil or length ~= #body then bad = bad + 1 end
  if status == 200 then
    n200 = n200 + 1
    if #body ~= {SIZE} then bad = bad + 1 end
  elseif status == 206 then
    n206 = n206 + 1
    local cr = headers["Content-Range"]
    local ct = headers["Content-Type"] or ""
    if cr ~= nil then
      if singles[cr] ~= #body then bad = bad + 1 end
    elseif string.sub(ct, 1, 31) == "multipart/byteranges; boundary="
        and string.find(body, "Content-Range: bytes 1000-1999/{SIZE}", 1, true) then
      multipart = multipart + 1
    else
      bad = bad + 1
    end
  elseif status == 416 then
    n416 = n416 + 1
    if headers["Content-Range"] ~= "bytes */{SIZE}" then bad = bad + 1 end
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local t = {{bad = 0, n200 = 0, n206 = 0, n416 = 0, multipart = 0}}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(t) do t[key] = t[key] + thread:get(key) end
  end
  io.write(string.format("RESULT bad=%d n200=%d n206=%d n416=%d multipart=%d\\n",
                         t.bad, t.n200, t.n206, t.n416, t.multipart))
end
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def worker_pid(master: int) -> int:
    """The single gunicorn worker (a child of the master), found through /proc."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise AssertionError("gunicorn started no worker")


def check_sample(client: RawClient, data: bytes, route: str, value: str | None,
                 status: int, parts: list[tuple[int, int]]) -> None:
    resp = client.request(route, {} if value is None else {"Range": value})
    assert resp.status == status, (route, value, resp.status)
    if status == 416:
        assert resp.header("Content-Range") == f"bytes */{SIZE}"
    elif len(parts) > 1:
        got = parse_multipart(resp.body, resp.header("Content-Type") or "")
        assert [p for _, p in got] == [data[a:b + 1] for a, b in parts]
    else:
        (a, b), = parts
        assert resp.body == data[a:b + 1]


class Sampler(threading.Thread):
    """Fetch every shape with a raw keep-alive client while the load runs."""

    def __init__(self, server: Server, data: bytes, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.server, self.data, self.stop = server, data, stop
        self.samples = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with RawClient(self.server.port, timeout=60) as client:
                while not self.stop.is_set():
                    for route in ROUTES:
                        for value, status, parts in MIX:
                            check_sample(client, self.data, route, value, status, parts)
                            self.samples += 1
                    time.sleep(0.05)
                client.assert_idle()
        except BaseException as exc:  # reported by the test thread
            self.error = exc


def run_wrk(wrk: str, server: Server, script: Path, seconds: int) -> str:
    cmd = [wrk, "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "10s",
           "-s", str(script), f"{server.url}/"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_mixed_ranges_under_load(tmp_path: Path) -> None:
    wrk = need_tool("wrk")
    path, data = write_data(tmp_path, SIZE)
    script = tmp_path / "mix.lua"
    script.write_text(lua_script())
    server = launch("gunicorn-gthread", free_port(), tmp_path, path)
    try:
        pid = worker_pid(server.proc.pid)
        run_wrk(wrk, server, script, 2)  # warm-up
        rss_before = rss_kib(pid)
        stop = threading.Event()
        sampler = Sampler(server, data, stop)
        sampler.start()
        out = run_wrk(wrk, server, script, SECONDS)
        stop.set()
        sampler.join(60)
        assert not sampler.is_alive(), "the sampling client hung"
        if sampler.error is not None:
            raise sampler.error
        rss_after = rss_kib(pid)
        assert worker_pid(server.proc.pid) == pid, "the worker was replaced"
    finally:
        server.stop()
    print(out)
    print(f"worker RSS {rss_before} KiB -> {rss_after} KiB; {sampler.samples} samples")
    result = re.search(r"RESULT bad=(\d+) n200=(\d+) n206=(\d+) n416=(\d+) multipart=(\d+)", out)
    assert result is not None, out
    bad, n200, n206, n416, multipart = (int(g) for g in result.groups())
    assert bad == 0, out
    assert min(n200, n206, n416, multipart) > 0, out
    # wrk counts 416 as "Non-2xx or 3xx": those must be exactly the 416s and nothing else.
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non2xx is not None and int(non2xx.group(1)) == n416, out
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    assert errors is None, out  # wrk prints the line only when there were socket errors
    assert sampler.samples >= len(ROUTES) * len(MIX)
    assert rss_after < 2 * rss_before + 16 * 1024, (rss_before, rss_after)
