"""HTTP behaviour of the real server, black-box: ranges, HEAD, ETag/304, CORS, path
safety, error statuses with JSON bodies, determinism, HTTP/2 cleartext, SIGTERM."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.parse

import pytest

from oracle import (FIXTURES, Server, oracle_missing, dash_representations, fetch, get_ok,
                    has_curl, start_server, stop_server, track_name_from_url)


@pytest.fixture(scope="module")
def seg(server) -> dict:
    """A real media segment, an init segment and a track name of `demo`, found through its MPD."""
    reps = dash_representations(server.base_url, "demo")
    video = next(r for r in reps if r.content_type == "video")
    full = get_ok(video.segments[0].url)
    assert len(full.body) > 200, f"segment too small for range checks: {len(full.body)} bytes"
    return {"url": video.segments[0].url, "body": full.body, "headers": full.headers, "init": video.init_url,
            "track": track_name_from_url(video.init_url, "demo"), "count": len(video.segments)}


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


# --------------------------------------------------------------------------- ranges and HEAD


@pytest.mark.parametrize("spec,start,end", [
    ("bytes=10-99", 10, 99),
    ("bytes=100-", 100, None),
    ("bytes=-64", -64, None),
    ("bytes=0-0", 0, 0),
])
def test_range_request_returns_the_slice(server, seg, spec, start, end):
    body = seg["body"]
    n = len(body)
    if start < 0:
        lo, hi = n + start, n - 1
    else:
        lo, hi = start, (n - 1 if end is None else end)
    r = fetch(seg["url"], headers={"Range": spec})
    assert r.status == 206, f"Range {spec}: {r.describe()}"
    assert r.header("content-range") == f"bytes {lo}-{hi}/{n}", f"Range {spec}: Content-Range {r.header('content-range')!r}"
    assert r.body == body[lo:hi + 1], f"Range {spec}: body is not bytes {lo}-{hi} of the full response"
    assert r.header("content-length") == str(hi - lo + 1), f"Range {spec}: Content-Length {r.header('content-length')}"


def test_unsatisfiable_range_is_416(server, seg):
    n = len(seg["body"])
    r = fetch(seg["url"], headers={"Range": f"bytes={n}-{n + 10}"})
    assert r.status == 416, f"Range beyond the end: {r.describe()}"
    assert r.header("content-range") == f"bytes */{n}", \
        f"416 should carry Content-Range: bytes */{n} (RFC 9110 15.5.17), got {r.header('content-range')!r}"


def _raw_head(url: str) -> bytes:
    """HEAD over a raw socket, reading until close, so a body sent by mistake is seen."""
    p = urllib.parse.urlsplit(url)
    with socket.create_connection((p.hostname, p.port), timeout=10) as s:
        s.sendall(f"HEAD {p.path} HTTP/1.1\r\nHost: {p.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    return data


@pytest.mark.parametrize("which", ["segment", "init", "mpd", "m3u8"])
def test_head_has_length_and_no_body(server, seg, which):
    url = {"segment": seg["url"], "init": seg["init"], "mpd": server.url("/demo/manifest.mpd"),
           "m3u8": server.url("/demo/master.m3u8")}[which]
    full = get_ok(url)
    raw = _raw_head(url)
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode()
    assert re.match(r"HTTP/1\.[01] 200", status), f"HEAD {url}: {status}"
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:])}
    assert headers.get("content-length") == str(len(full.body)), \
        f"HEAD {url}: Content-Length {headers.get('content-length')!r}, GET body has {len(full.body)} bytes"
    assert rest == b"", f"HEAD {url} sent {len(rest)} body bytes"


# --------------------------------------------------------------------------- caching headers


@pytest.mark.parametrize("which", ["segment", "init", "mpd", "m3u8"])
def test_etag_and_conditional_get(server, seg, which):
    url = {"segment": seg["url"], "init": seg["init"], "mpd": server.url("/demo/manifest.mpd"),
           "m3u8": server.url("/demo/master.m3u8")}[which]
    r = get_ok(url)
    etag = r.header("etag")
    assert etag, f"no ETag on {url}"
    assert re.fullmatch(r'(W/)?"[^"]*"', etag), f"ETag {etag!r} is not a quoted entity-tag (RFC 9110 8.8.3)"
    again = get_ok(url)
    assert again.header("etag") == etag, f"ETag changed between two GETs of {url}: {etag} / {again.header('etag')}"
    r304 = fetch(url, headers={"If-None-Match": etag})
    assert r304.status == 304, f"If-None-Match {etag}: {r304.describe()}"
    assert r304.body == b"", f"304 for {url} has a body"
    other = fetch(url, headers={"If-None-Match": '"definitely-not-the-etag"'})
    assert other.status == 200 and other.body == r.body, f"non-matching If-None-Match: {other.describe()}"


def test_segments_are_cacheable(server, seg):
    cc = (seg["headers"].get("cache-control") or "").lower()
    assert cc and "no-store" not in cc and "no-cache" not in cc and "private" not in cc, \
        f"segment {seg['url']} Cache-Control {cc!r}: CDNs should be allowed to cache it"


@pytest.mark.parametrize("which,types", [
    ("segment", {"video/mp4", "video/iso.segment", "application/mp4"}),
    ("init", {"video/mp4", "application/mp4"}),
])
def test_media_content_types(server, seg, which, types):
    r = get_ok(seg["url"] if which == "segment" else seg["init"])
    ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
    assert ctype in types, f"{r.url}: Content-Type {r.header('content-type')!r}, expected one of {sorted(types)}"


# --------------------------------------------------------------------------- CORS


@pytest.mark.parametrize("which", ["segment", "mpd", "m3u8"])
def test_cors_allows_players_on_other_origins(server, seg, which):
    url = {"segment": seg["url"], "mpd": server.url("/demo/manifest.mpd"),
           "m3u8": server.url("/demo/master.m3u8")}[which]
    origin = "http://player.example"
    r = fetch(url, headers={"Origin": origin})
    assert r.status == 200, r.describe()
    acao = r.header("access-control-allow-origin")
    assert acao in ("*", origin), f"{url} with Origin: Access-Control-Allow-Origin {acao!r}"


def test_cors_preflight_for_range(server, seg):
    origin = "http://player.example"
    r = fetch(seg["url"], method="OPTIONS", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range"})
    assert r.status in (200, 204), f"preflight: {r.describe()}"
    assert r.header("access-control-allow-origin") in ("*", origin), f"preflight: {r.headers}"
    allowed = (r.header("access-control-allow-headers") or "").lower()
    assert allowed == "*" or "range" in [h.strip() for h in allowed.split(",")], \
        f"preflight does not allow the Range header: Access-Control-Allow-Headers {allowed!r}"


# --------------------------------------------------------------------------- path safety and errors


TRAVERSALS = [
    "/../etc/passwd",
    "/%2e%2e/x",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/demo/..%2f..%2fetc/manifest.mpd",
    "/demo/../../etc/manifest.mpd",
    "/demo/%2e%2e/%2e%2e/etc/passwd",
    "/demo\\..\\..\\etc/manifest.mpd",
    "/demo/..%5c..%5cetc/manifest.mpd",
    "/demo/%5c..%5c/manifest.mpd",
    "/demo/anytrack/..%2f..%2f..%2fetc%2fpasswd",
]


@pytest.mark.parametrize("raw_path", TRAVERSALS)
def test_path_traversal_is_rejected(server, raw_path):
    try:
        r = fetch(server.base_url, raw_path=raw_path)
    except Exception as e:  # a server that drops the connection is not serving the file either
        pytest.fail(f"GET {raw_path}: connection error {e!r}, expected a 400 response")
    assert b"root:" not in r.body, f"GET {raw_path} leaked /etc/passwd"
    assert r.status == 400, f"GET {raw_path}: expected 400, got {r.describe()}"


def _is_json_error(r) -> bool:
    try:
        json.loads(r.body)
    except ValueError:
        return False
    return (r.header("content-type") or "").split(";")[0].strip().lower() in ("application/json",
                                                                             "application/problem+json")


def test_unknown_things_are_404(server, seg):
    track = seg["track"]
    paths = [
        "/no-such-asset/manifest.mpd",
        "/no-such-asset/master.m3u8",
        "/demo/nested/no-such-asset/manifest.mpd",
        "/demo/no-such-track/index.m3u8",
        "/demo/no-such-track/init.mp4",
        "/demo/no-such-track/1.m4s",
        f"/demo/{track}/{seg['count'] + 1}.m4s",
        f"/demo/{track}/999999.m4s",
        f"/demo/{track}/0.m4s",  # startNumber is 1
    ]
    bad = [f"GET {p}: {r.status} (expected 404) body={r.body[:120]!r}"
           for p in paths for r in [fetch(server.url(p))] if r.status != 404]
    assert not bad, "\n".join(bad)


def test_not_found_bodies_are_json(server):
    """Errors are JSON everywhere, not only for broken media."""
    r = fetch(server.url("/no-such-asset/manifest.mpd"))
    assert r.status == 404
    assert _is_json_error(r), f"404 body is not JSON (Content-Type {r.header('content-type')!r}): {r.body[:200]!r}"


@pytest.mark.parametrize("path", [
    "/bad/manifest.mpd",
    "/bad/master.m3u8",
    "/bad/garbage/init.mp4",
    "/bad/garbage/1.m4s",
    "/bad/garbage/index.m3u8",
])
def test_broken_media_gives_an_error_status_with_json(server, path):
    r = fetch(server.url(path))
    assert 400 <= r.status < 600, f"GET {path}: expected a 4xx/5xx for broken media, got {r.describe()}"
    assert _is_json_error(r), (f"GET {path}: {r.status} body is not JSON (Content-Type "
                               f"{r.header('content-type')!r}): {r.body[:200]!r}")
    after = fetch(server.url("/demo/manifest.mpd"))
    assert after.status == 200, f"after GET {path}, /demo/manifest.mpd: {after.describe()}"


def test_truncated_track_never_yields_a_cut_segment(server):
    """The truncated file is cut inside its second fragment: whatever the server does with
    it, it must not serve a short segment as 200, nor die."""
    for p in ["/bad/truncated/init.mp4", "/bad/truncated/1.m4s", "/bad/truncated/2.m4s",
              "/bad/truncated/3.m4s", "/bad/truncated/index.m3u8"]:
        r = fetch(server.url(p))
        if r.status >= 400:
            assert _is_json_error(r), f"GET {p}: {r.status} without a JSON body: {r.body[:200]!r}"
        elif p.endswith(".m4s") and r.status == 200:
            # A fragment-complete answer is fine; a cut one is not: moof+mdat sizes must add up.
            b = r.body
            off = 0
            while off + 8 <= len(b):
                size = int.from_bytes(b[off:off + 4], "big")
                assert size >= 8, f"GET {p}: box with size {size} at {off}"
                off += size
            assert off == len(b), f"GET {p}: 200 with a truncated box ({off} != {len(b)} bytes)"
    assert fetch(server.url("/demo/manifest.mpd")).status == 200


def test_server_survives_the_error_cases(server, seg):
    """After all of the above, the same segment is still served, byte for byte."""
    assert server.alive(), f"server exited: {server.log_tail()}"
    r = get_ok(seg["url"])
    assert r.body == seg["body"]


# --------------------------------------------------------------------------- determinism and HTTP/2


@pytest.mark.parametrize("which", ["mpd", "m3u8", "media-playlist", "init", "segment"])
def test_same_request_same_bytes(server, seg, which):
    url = {"mpd": server.url("/demo/manifest.mpd"), "m3u8": server.url("/demo/master.m3u8"),
           "media-playlist": server.url(f"/demo/{seg['track']}/index.m3u8"),
           "init": seg["init"], "segment": seg["url"]}[which]
    a, b = get_ok(url), get_ok(url)
    assert a.body == b.body, f"two GETs of {url} returned different bytes ({len(a.body)} / {len(b.body)})"


def test_http2_cleartext(server, seg):
    if not has_curl():
        oracle_missing("curl not installed: HTTP/2 prior-knowledge check not run")
    out = subprocess.run(["curl", "--http2-prior-knowledge", "-sS", "-o", "/dev/null", "-D", "-",
                          "--max-time", "10", seg["url"]], capture_output=True, text=True, timeout=20)
    if "http2" in out.stderr.lower() and "not support" in out.stderr.lower():
        oracle_missing(f"this curl has no HTTP/2: {out.stderr.strip()}")
    first = out.stdout.splitlines()[0] if out.stdout else ""
    assert out.returncode == 0 and first.startswith("HTTP/2 200"), \
        f"curl --http2-prior-knowledge {seg['url']}: rc={out.returncode} status line {first!r} {out.stderr.strip()}"


def test_sigterm_stops_the_server(tmp_path):
    s: Server = start_server(tmp_path / "sigterm.log")
    assert fetch(s.url("/demo/manifest.mpd")).status == 200
    code = stop_server(s, timeout=10)
    assert code is not None, "sealcast did not exit within 10 s of SIGTERM"
    # A graceful shutdown ends with exit status 0; death by the signal itself (-15, or 143 from
    # a shell) would mean the handler never ran, and is a failure.
    assert code == 0, f"sealcast exited with {code} after SIGTERM, expected 0 (graceful); log:\n{s.log_tail()}"


def test_nested_asset_path(tmp_path):
    """Assets may sit in nested folders: /shows/s1/demo/manifest.mpd works and its segments
    carry the same bytes as the flat copy's."""
    root = tmp_path / "root"
    nested = root / "shows" / "s1" / "demo"
    nested.mkdir(parents=True)
    for f in (FIXTURES / "demo").iterdir():
        shutil.copy(f, nested / f.name)
    s: Server = start_server(tmp_path / "nested.log", root=root)
    try:
        reps = dash_representations(s.base_url, "shows/s1/demo")
        assert reps, "no Representations in the nested asset's MPD"
        first = reps[0]
        assert urllib.parse.urlsplit(first.init_url).path.startswith("/shows/s1/demo/"), first.init_url
        r = get_ok(first.segments[0].url)
        assert len(r.body) > 0
        assert get_ok(s.url("/shows/s1/demo/master.m3u8")).body.startswith(b"#EXTM3U")
        assert fetch(s.url("/shows/s1/manifest.mpd")).status == 404, "a folder without media is not an asset"
    finally:
        stop_server(s)


def test_truncated_track_alone(tmp_path):
    """`bad/truncated.cmfv` in an asset of its own (in `bad/` the garbage file fails the whole
    asset first): as the README says for files that cannot be packaged, every manifest of
    the asset is refused with 500 and a JSON body naming the asset and the fault (what ffmpeg
    reads of the file is not a whole track: its last moof/mdat is cut)."""
    root = tmp_path / "root"
    (root / "t").mkdir(parents=True)
    shutil.copy(FIXTURES / "bad" / "truncated.cmfv", root / "t" / "truncated.cmfv")
    s: Server = start_server(tmp_path / "truncated.log", root=root)
    try:
        for path in ("/t/manifest.mpd", "/t/master.m3u8", "/t/Manifest"):
            r = fetch(s.url(path))
            assert r.status == 500, f"{path}: expected 500 (file cannot be packaged): {r.describe()}"
            assert _is_json_error(r), f"{path}: {r.status} without a JSON body: {r.body[:200]!r}"
            body = json.loads(r.body)
            assert body.get("asset") == "t" and "truncated.cmfv" in str(body.get("fault", "")), \
                f"{path}: the error names neither the asset nor the faulty file: {body}"
        assert s.alive(), f"server died on the truncated file: {s.log_tail()}"
    finally:
        stop_server(s)
