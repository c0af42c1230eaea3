"""Common Encryption, end to end (issue 4): what the server encrypts decrypts back to the
source, judged only by tools we did not write.

- Shaka Packager 3.8 (`--enable_raw_key_decryption`) and ffmpeg 8.1 (`-decryption_key`)
  decrypt init + every segment of every track (DASH cenc and cbcs, HLS fMP4 cbcs, Smooth
  PIFF when served) and `framemd5 -c copy` must equal the clear source track packet for
  packet; without the key the samples differ, with a wrong key they do not come back.
- MPEG's `DASH-MPD.xsd` (+ DASH-IF's `DASH-IF-CPS.xsd` for `dashif:Laurl`) validates the MPDs.
- mp4box.js (npm `mp4box`) reports scheme, pattern, KID, IVs and PSSH system IDs.
- shaka-player and dash.js play through EME `org.w3.clearkey` in Debian's Chromium; with
  wrong keys they must not.
- Same request, same bytes; two servers started separately, same bytes.

Servers are started here with catalogs written to pytest temp dirs; the keys below are the
only fixed values. Which key a track uses is never assumed: it is read from the served
init segment's `tenc` (and the MPD's `cenc:default_KID`) and looked up in this table.
A Shaka-Packager-encrypted control (no server needed) proves the oracles can pass and fail.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import shutil
import subprocess
import urllib.parse
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest

from oracle import (mpd_schema, oracle_missing, require_browser, run_cenc_player, CLEARKEY_DASH_SCHEME, E2E_DIR, FIXTURES, NS, PACKAGER, SCHEMAS, SYSTEM_IDS, compare_samples, compare_timestamps, count_equal_samples, decrypt_with_packager,
                    decrypted_framemd5, expand_mpd, fetch, framemd5, get_ok, hex_kid, init_protection,
                    parse_pssh, playready_kids, pssh_boxes, require_tool, source_hashes, source_track,
                    source_tracks, start_server_config, stop_server, widevine_kids)

# --------------------------------------------------------------------------- keys and catalogs

# (kid, key). The first is ORACLES.md's test pair; the others are made up.
CENC_KEYS = [("abba271e8bcf552bbd2e86a434a9a5d9", "69eaa802a6763af979e8d1940fb88392"),
             ("5ea1ca57000040008000000000000002", "00112233445566778899aabbccddeeff")]
CBCS_KEYS = [("cbc5cbc5000040008000000000000003", "ffeeddccbbaa99887766554433221100"),
             ("cbc5cbc5000040008000000000000004", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")]
KEYS = dict(CENC_KEYS + CBCS_KEYS)
KIND_KEYS = {"cenc": {k for k, _ in CENC_KEYS}, "cbcs": {k for k, _ in CBCS_KEYS}}
LICENSE = {"clearkey": "https://example.invalid/clearkey", "playready": "https://pr.example/rightsmanager.asmx",
           "widevine": "https://wv.example/license", "fairplay": "skd://demo"}
DELIVERY = {"cenc": "DynamicCommonEncryption", "cbcs": "DynamicCommonEncryptionCbcs", "clear": "NoDynamicEncryption"}
FAIRPLAY_KEYFORMAT = "com.apple.streamingkeydelivery"
WIDEVINE_URN = "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY_URN = "urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95"
PLAYREADY_KEYFORMATS = {"com.microsoft.playready", PLAYREADY_URN}
LOCATOR = "loc1"

# Server "a" (and its twin "b", same catalog, for cross-server determinism) and server
# "swap" with the DASH schemes exchanged, so H.264 and HEVC are each seen under cenc AND cbcs.
POLICY_A = {
    "demo": {"dash": "cenc", "hls": "cbcs", "smooth": "cenc"},
    "hevc": {"dash": "cbcs", "hls": "cbcs", "smooth": "cenc"},   # HEVC, B-frames, negative CTO
    "multi": {"dash": "cenc", "hls": "cbcs", "smooth": "cenc"},  # two tracks in one file
    # progressive MP4 (issue 15): interleaved A/V, moov at the end / negative composition offsets
    "progressive/tail": {"dash": "cenc", "hls": "cbcs", "smooth": "cenc"},
    "progressive/negcts": {"dash": "cbcs", "hls": "cbcs", "smooth": "cenc"},
}
POLICY_SWAP = {
    "demo": {"dash": "cbcs", "hls": "cbcs", "smooth": "cenc"},
    "hevc": {"dash": "cenc", "hls": "cbcs", "smooth": "cenc"},
    "progressive/tail": {"dash": "cbcs", "hls": "cbcs", "smooth": "cenc"},
    "progressive/negcts": {"dash": "cenc", "hls": "cbcs", "smooth": "cenc"},
}
SERVERS = {"a": POLICY_A, "b": POLICY_A, "swap": POLICY_SWAP}
DASH_CASES = [("a", "demo"), ("a", "hevc"), ("a", "multi"), ("swap", "demo"), ("swap", "hevc"),
              ("a", "progressive/tail"), ("a", "progressive/negcts"), ("swap", "progressive/tail"), ("swap", "progressive/negcts")]
HLS_CASES = [("a", "demo"), ("a", "hevc"), ("a", "progressive/tail"), ("a", "progressive/negcts")]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def catalog_toml(policy: dict[str, dict[str, str]]) -> str:
    lic = ", ".join(f'{k} = {json.dumps(v)}' for k, v in LICENSE.items())
    keys = ",\n  ".join([f'{{ kid = "{k}", key = "{v}" }}' for k, v in CENC_KEYS] +
                        [f'{{ kid = "{k}", key = "{v}", kind = "CommonEncryptionCbcs" }}' for k, v in CBCS_KEYS])
    out = []
    for asset, p in policy.items():
        out.append(f'[[asset]]\npath = "{asset}"\n' + "".join(f'{proto} = "{DELIVERY[p[proto]]}"\n'
                                                               for proto in ("dash", "hls", "smooth")) +
                   f"clear_lead_secs = 0\nlicense = {{ {lic} }}\nkeys = [\n  {keys},\n]\n")
    return "\n".join(out)


def _fails(errors: list[str]) -> None:
    assert not errors, f"{len(errors)} problem(s):\n" + "\n".join(errors)


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    started = {}
    try:
        for name, policy in SERVERS.items():
            d = tmp_path_factory.mktemp(f"cenc-{name}")
            (d / "catalog.toml").write_text(catalog_toml(policy))
            cfg = d / "sealcast.toml"
            cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(FIXTURES.resolve()))}\n'
                           f'catalog = {json.dumps(str(d / "catalog.toml"))}\nallow_clear_without_policy = true\n'
                           f'\n[locators]\n"{LOCATOR}" = "demo"\n')
            started[name] = start_server_config(cfg, d / "sealcast.stderr.log")
        yield started
    finally:
        for s in started.values():
            stop_server(s)


@pytest.fixture(autouse=True)
def _servers_alive(request):
    yield
    if "servers" in request.fixturenames:
        for name, s in request.getfixturevalue("servers").items():
            if not s.alive():
                pytest.fail(f"sealcast '{name}' exited (code {s.proc.returncode}) during this test; "
                            f"stderr tail:\n{s.log_tail()}")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cenc-work")


# --------------------------------------------------------------------------- fetching what the server serves

_bodies: dict[str, bytes] = {}


def body(url: str) -> bytes:
    if url not in _bodies:
        _bodies[url] = get_ok(url).body
    return _bodies[url]


def _track_and_scheme(url: str, asset: str) -> tuple[str, str]:
    """/{asset}/{track}/{scheme}/{file} -> (track, scheme) (the design's URL grammar)."""
    path = urllib.parse.urlsplit(url).path
    rest = path[len(f"/{asset}/"):].split("/") if path.startswith(f"/{asset}/") else []
    assert len(rest) == 3, f"{url}: expected /{asset}/{{track}}/{{cenc|cbcs}}/{{file}}"
    return urllib.parse.unquote(rest[0]), rest[1]


class Track:
    """One served track: its source, the concatenated init + segments, and its protection."""

    def __init__(self, what: str, asset: str, name: str, scheme: str, init_url: str, seg_urls: list[str], work: Path):
        self.what, self.asset, self.name, self.scheme = what, asset, name, scheme
        self.init_url, self.seg_urls = init_url, seg_urls
        self.source = source_track(asset, name)
        self.file = work / _SAFE.sub("_", f"{what}.mp4")
        with open(self.file, "wb") as f:
            f.write(body(init_url))
            for u in seg_urls:
                f.write(body(u))
        prot = init_protection(body(init_url))
        assert len(prot) == 1, f"{what}: init {init_url} has {len(prot)} protected sample entries, expected 1: {prot}"
        self.prot = prot[0]
        self.kid = self.prot.kid
        assert self.kid in KEYS, (f"{what}: tenc default_KID {self.kid} is none of the catalog's KIDs "
                                  f"{sorted(KEYS)}")
        self.key = KEYS[self.kid]


@functools.lru_cache(maxsize=None)
def _mpd(base: str, asset: str, path: str = "manifest.mpd") -> tuple[str, str]:
    url = f"{base}/{asset}/{path}" if not path.startswith("/") else base + path
    r = get_ok(url)
    return url, r.text()


_tracks: dict[tuple, list[Track]] = {}


def dash_tracks(servers, server: str, asset: str, work: Path) -> list[Track]:
    k = ("dash", server, asset)
    if k not in _tracks:
        url, text = _mpd(servers[server].base_url, asset)
        _, reps = expand_mpd(url, text)
        out = []
        for r in reps:
            name, scheme = _track_and_scheme(r.init_url, asset)
            out.append(Track(f"{server}-{asset}-dash-{r.id}", asset, name, scheme, r.init_url,
                             [s.url for s in r.segments], work))
        _tracks[k] = out
    return _tracks[k]


def _m3u8_attrs(line: str) -> dict[str, str]:
    attrs = {}
    for m in re.finditer(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]):
        attrs[m.group(1)] = m.group(2).strip('"')
    return attrs


def hls_media_playlists(base: str, asset: str) -> tuple[str, list[str]]:
    """Master text and the absolute URLs of every variant and rendition playlist."""
    murl = f"{base}/{asset}/master.m3u8"
    text = get_ok(murl).text()
    uris = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-MEDIA:") and "URI=" in line:
            uris.append(_m3u8_attrs(line)["URI"])
        elif line.startswith("#EXT-X-STREAM-INF:"):
            uris.append(next(x for x in lines[i + 1:] if x and not x.startswith("#")))
    return text, sorted({urllib.parse.urljoin(murl, u) for u in uris})


def hls_tracks(servers, server: str, asset: str, work: Path) -> list[tuple[Track, str]]:
    k = ("hls", server, asset)
    if k not in _tracks:
        _, playlists = hls_media_playlists(servers[server].base_url, asset)
        out = []
        for purl in playlists:
            text = get_ok(purl).text()
            maps = [_m3u8_attrs(x) for x in text.splitlines() if x.startswith("#EXT-X-MAP:")]
            assert len(maps) == 1, f"{purl}: expected one EXT-X-MAP, found {len(maps)}"
            segs = [urllib.parse.urljoin(purl, x) for x in text.splitlines() if x and not x.startswith("#")]
            name, scheme = _track_and_scheme(purl, asset)
            t = Track(f"{server}-{asset}-hls-{name}", asset, name, scheme, urllib.parse.urljoin(purl, maps[0]["URI"]),
                      segs, work)
            out.append((t, text))
        _tracks[k] = out
    return _tracks[k]


# --------------------------------------------------------------------------- the decryption oracle


def packager_input(f: Path) -> Path:
    """Shaka Packager 3.8 dies with SIGSEGV on a single-track fragmented file whose track_ID
    is not 1 (seen on multi's audio, track_ID 2 as in the source; clear output too, and the
    same bytes renumbered to 1 work). For Packager only, renumber tkhd/trex/tfhd to 1; every
    other byte is as served, and ffmpeg always reads the file untouched."""
    from oracle import _find
    data = f.read_bytes()
    ids = [int.from_bytes(data[s + (20 if data[s] == 1 else 12):][:4], "big") for s, _ in _find(data, [b"moov", b"trak", b"tkhd"])]
    if len(ids) != 1 or ids[0] == 1:
        return f
    d = bytearray(data)
    for s, _ in _find(data, [b"moov", b"trak", b"tkhd"]):
        off = s + (20 if data[s] == 1 else 12)
        d[off:off + 4] = (1).to_bytes(4, "big")
    for s, _ in _find(data, [b"moov", b"mvex", b"trex"]):
        d[s + 4:s + 8] = (1).to_bytes(4, "big")
    for s, _ in _find(data, [b"moof", b"traf", b"tfhd"]):
        d[s + 4:s + 8] = (1).to_bytes(4, "big")
    out = f.with_suffix(".track1.mp4")
    out.write_bytes(bytes(d))
    return out


def check_decrypts(t: Track, errors: list[str], timestamps: bool = False) -> None:
    """Shaka Packager and ffmpeg both decrypt `t` back to the source's samples; without a
    key the samples are not the source's."""
    want = source_hashes(t.asset, t.name)
    try:
        clear = decrypt_with_packager(packager_input(t.file), t.source.codec_type, t.kid, t.key,
                                      t.file.with_suffix(".packager.mp4"))
        compare_samples(framemd5(str(clear), "0:0"), want, f"{t.what}: Shaka Packager decryption with KID {t.kid}")
    except AssertionError as e:
        errors.append(str(e))
    try:
        got = decrypted_framemd5(t.file, t.key)
        compare_samples(got, want, f"{t.what}: ffmpeg -decryption_key (KID {t.kid})")
        if timestamps:
            compare_timestamps(got, want, f"{t.what}: decrypted timestamps", max(got.tb, want.tb) + Fraction(1, 10**6))
    except AssertionError as e:
        errors.append(str(e))
    try:
        enc = framemd5(str(t.file), "0:0")
        same = count_equal_samples(enc, want)
        big = [i for i, (g, w) in enumerate(zip(enc.packets, want.packets))
               if w.size >= 256 and (g.size, g.md5) == (w.size, w.md5)]
        if len(enc.packets) != len(want.packets) or big or same > len(want.packets) // 2:
            errors.append(f"{t.what}: without the key {same} of {len(enc.packets)} samples equal the source's "
                          f"({len(want.packets)} in the source); samples of ≥256 bytes left clear: {big[:10]} "
                          f"(expected every such sample encrypted, clear_lead_secs = 0)")
    except AssertionError as e:
        errors.append(f"{t.what}: ffmpeg could not even read the encrypted file without a key: {e}")


def check_kid_assignment(tracks: list[Track], scheme: str, what: str, errors: list[str]) -> None:
    kind = KIND_KEYS[scheme]
    audio = {t.kid for t in tracks if t.source.codec_type == "audio"}
    video = {t.kid for t in tracks if t.source.codec_type == "video"}
    for t in tracks:
        if t.kid not in kind:
            errors.append(f"{t.what}: {scheme} track uses KID {t.kid}, which is not a "
                          f"{'CommonEncryptionCbcs' if scheme == 'cbcs' else 'CommonEncryption'} key of the catalog "
                          f"({sorted(kind)})")
    if audio & video:
        errors.append(f"{what}: audio and video share KID(s) {sorted(audio & video)} although the catalog has "
                      f"two {scheme} keys (audio KIDs {sorted(audio)}, video KIDs {sorted(video)})")
    if len(audio) > 1:
        errors.append(f"{what}: audio tracks use {len(audio)} KIDs {sorted(audio)}; expected one audio key")
    if len(video) > 1:
        errors.append(f"{what}: all video renditions are SD (one quality group) yet use KIDs {sorted(video)}")


# --------------------------------------------------------------------------- 1. DASH decrypts to the source


@pytest.mark.parametrize("srv,asset", DASH_CASES, ids=[f"{s}-{a}" for s, a in DASH_CASES])
def test_dash_decrypts_to_source(servers, work, srv, asset):
    scheme = SERVERS[srv][asset]["dash"]
    tracks = dash_tracks(servers, srv, asset, work)
    want = sorted(source_tracks(asset))
    assert sorted(t.name for t in tracks) == want, \
        f"/{asset}/manifest.mpd on '{srv}': tracks {sorted(t.name for t in tracks)}, source has {want}"
    errors = []
    for t in tracks:
        if t.scheme != scheme or t.prot.scheme != scheme:
            errors.append(f"{t.what}: URL scheme segment {t.scheme!r}, schm {t.prot.scheme!r}; the policy asks for {scheme!r}")
        check_decrypts(t, errors, timestamps=True)
    check_kid_assignment(tracks, scheme, f"{srv}/{asset} DASH", errors)
    _fails(errors)


@pytest.mark.parametrize("srv,asset", [("a", "demo"), ("a", "hevc")], ids=["cenc-h264", "cbcs-hevc"])
def test_wrong_key_does_not_decrypt(servers, work, srv, asset):
    """The right KID with a wrong key: neither tool may give the source back."""
    errors = []
    for t in dash_tracks(servers, srv, asset, work):
        want = source_hashes(t.asset, t.name)
        wrong = f"{int(t.key, 16) ^ (1 << 77):032x}"
        clear = decrypt_with_packager(packager_input(t.file), t.source.codec_type, t.kid, wrong,
                                      t.file.with_suffix(".wrong.mp4"))
        for tool, got in (("Shaka Packager", framemd5(str(clear), "0:0")), ("ffmpeg", decrypted_framemd5(t.file, wrong))):
            same = count_equal_samples(got, want)
            if same > len(want.packets) // 2:
                errors.append(f"{t.what}: {tool} with a wrong key still gives {same} of {len(want.packets)} source samples")
    _fails(errors)


# --------------------------------------------------------------------------- 2. MPD: schema and signalling


def _schema():
    return mpd_schema()


@pytest.mark.parametrize("srv,asset", DASH_CASES, ids=[f"{s}-{a}" for s, a in DASH_CASES])
def test_mpd_validates_against_mpeg_schema(servers, srv, asset):
    if not (SCHEMAS / "DASH-MPD.xsd").exists() or not (SCHEMAS / "xlink.xsd").exists():
        oracle_missing(f"MPEG's DASH schema not found at {SCHEMAS}: schema validation not run")
    url, text = _mpd(servers[srv].base_url, asset)
    schema = _schema()
    errors = [f"{e.path}: {e.reason}" for e in schema.iter_errors(text)]
    assert not errors, f"{url} is not valid per DASH-MPD.xsd (+ DASH-IF-CPS.xsd):\n" + "\n".join(errors[:10])
    if "dashif.org/CPS" in text:
        assert (SCHEMAS / "DASH-IF-CPS.xsd").exists(), "dashif:Laurl used but DASH-IF-CPS.xsd is absent: not validated"


CENC_NS = "urn:mpeg:cenc:2013"
MSPR_NS = "urn:microsoft:playready"
DASHIF_NS = "https://dashif.org/CPS"


@pytest.mark.parametrize("srv,asset", DASH_CASES, ids=[f"{s}-{a}" for s, a in DASH_CASES])
def test_mpd_content_protection(servers, work, srv, asset):
    """Per AdaptationSet: mp4protection (scheme + default_KID = the init's tenc KID),
    Widevine and PlayReady PSSH naming that KID, PlayReady `mspr:pro`, ClearKey Laurl."""
    scheme = SERVERS[srv][asset]["dash"]
    url, text = _mpd(servers[srv].base_url, asset)
    root = ET.fromstring(text)
    init_kid = {t.init_url: t.kid for t in dash_tracks(servers, srv, asset, work)}
    _, reps = expand_mpd(url, text)
    errors = []
    for ai, aset in enumerate(root.findall("d:Period/d:AdaptationSet", NS)):
        where = f"{url} AdaptationSet #{ai} ({aset.get('contentType') or aset.get('mimeType')})"
        cps = {}
        for cp in aset.findall("d:ContentProtection", NS):
            cps.setdefault(cp.get("schemeIdUri", "").lower(), []).append(cp)
        mp4 = cps.get("urn:mpeg:dash:mp4protection:2011", [])
        if len(mp4) != 1:
            errors.append(f"{where}: {len(mp4)} mp4protection ContentProtection elements, expected 1")
            continue
        if mp4[0].get("value") != scheme:
            errors.append(f"{where}: mp4protection value={mp4[0].get('value')!r}, policy is {scheme!r}")
        dk = mp4[0].get(f"{{{CENC_NS}}}default_KID")
        if not dk:
            errors.append(f"{where}: no cenc:default_KID")
            continue
        kid = hex_kid(dk)
        for r in (x for x in reps if x.adaptation_index == ai):
            if init_kid.get(r.init_url) != kid:
                errors.append(f"{where}: cenc:default_KID {kid} but Representation {r.id}'s init ({r.init_url}) "
                              f"has tenc KID {init_kid.get(r.init_url)}")
        for sysname, urn in (("widevine", WIDEVINE_URN), ("playready", PLAYREADY_URN)):
            el = cps.get(urn, [])
            if len(el) != 1:
                errors.append(f"{where}: {len(el)} {sysname} ContentProtection ({urn}) elements, expected 1")
                continue
            p = el[0].find(f"{{{CENC_NS}}}pssh")
            if p is None:
                errors.append(f"{where}: {sysname} ContentProtection has no cenc:pssh")
                continue
            try:
                box = parse_pssh(base64.b64decode(p.text.strip()))
                if box.system_id != SYSTEM_IDS[sysname]:
                    errors.append(f"{where}: {sysname} cenc:pssh has SystemID {box.system_id}")
                kids = widevine_kids(box.data) if sysname == "widevine" else playready_kids(box.data)
                if kid not in kids + box.kids:
                    errors.append(f"{where}: {sysname} cenc:pssh names KIDs {kids + box.kids}, not {kid}")
            except (AssertionError, ValueError, UnicodeDecodeError) as e:
                errors.append(f"{where}: {sysname} cenc:pssh does not parse: {e}")
            if sysname == "playready":
                pro = el[0].find(f"{{{MSPR_NS}}}pro")
                if pro is None:
                    errors.append(f"{where}: PlayReady ContentProtection has no mspr:pro")
                else:
                    try:
                        if kid not in playready_kids(base64.b64decode(pro.text.strip())):
                            errors.append(f"{where}: mspr:pro does not name KID {kid}")
                    except (AssertionError, ValueError, UnicodeDecodeError) as e:
                        errors.append(f"{where}: mspr:pro does not parse: {e}")
        ck = cps.get(CLEARKEY_DASH_SCHEME, [])
        laurl = [e.text.strip() for c in ck for e in c.findall(f"{{{DASHIF_NS}}}Laurl") if e.text]
        if laurl != [LICENSE["clearkey"]]:
            errors.append(f"{where}: ClearKey ({CLEARKEY_DASH_SCHEME}) dashif:Laurl {laurl}, expected "
                          f"[{LICENSE['clearkey']!r}] from the catalog")
    _fails(errors)


# --------------------------------------------------------------------------- 3. mp4box.js reads the boxes

MP4BOX_PROBE = r"""
const MP4Box = require('mp4box');
const fs = require('fs');
const hex = (a) => Array.from(a || [], (x) => x.toString(16).padStart(2, '0')).join('');
const kidStr = (k) => (typeof k === 'string' ? k : hex(k)).replace(/-/g, '').toLowerCase();
const out = {};
for (const [label, initPath, segPath] of JSON.parse(process.argv[1])) {
  const a = fs.readFileSync(initPath), b = fs.readFileSync(segPath);
  const u = new Uint8Array(a.length + b.length); u.set(a, 0); u.set(b, a.length);
  const buf = u.buffer; buf.fileStart = 0;
  const f = MP4Box.createFile();
  const errors = [];
  f.onError = (e) => errors.push(String(e));
  f.appendBuffer(buf); f.flush();
  const r = { errors, tracks: [], psshs: [], moofPsshs: [], trafs: [] };
  for (const trak of (f.moov && f.moov.traks) || []) {
    for (const se of trak.mdia.minf.stbl.stsd.entries) {
      const sinf = se.sinf || (se.sinfs && se.sinfs[0]);
      const t = sinf && sinf.schi && sinf.schi.tenc;
      r.tracks.push({ trackId: trak.tkhd.track_id, entry: se.type, frma: sinf && sinf.frma && sinf.frma.data_format,
        scheme: sinf && sinf.schm && sinf.schm.scheme_type, schemeVersion: sinf && sinf.schm && sinf.schm.scheme_version,
        tenc: t ? { version: t.version, crypt: t.default_crypt_byte_block || 0, skip: t.default_skip_byte_block || 0,
          isProtected: t.default_isProtected, ivSize: t.default_Per_Sample_IV_Size, kid: kidStr(t.default_KID),
          constantIvSize: t.default_constant_IV_size || 0,
          constantIv: t.default_constant_IV ? hex(t.default_constant_IV) : null } : null });
    }
  }
  const ps = (p) => ({ systemId: p.system_id, version: p.version, kids: (p.kid || []).map(kidStr) });
  r.psshs = ((f.moov && f.moov.psshs) || []).map(ps);
  for (const moof of f.moofs || []) {
    r.moofPsshs.push(...((moof.psshs || []).map(ps)));
    for (const traf of moof.trafs || []) {
      const box = (t) => traf.boxes.find((x) => x.type === t);
      const saiz = box('saiz');
      const senc = box('senc');
      r.trafs.push({ boxes: traf.boxes.map((x) => x.type),
        saiz: saiz ? { defaultSize: saiz.default_sample_info_size, count: saiz.sample_count } : null,
        sencFlags: senc ? senc.flags : null,
        samples: (traf.truns || []).reduce((n, t) => n + (t.sample_count || 0), 0) });
    }
  }
  out[label] = r;
}
console.log(JSON.stringify(out));
"""


def mp4box_report(items: list[tuple[str, Path, Path]], errors: list[str]) -> dict:
    """mp4box.js's view of each (label, init, segment). `errors`: what the calling test found
    so far, reported (failing the test) before any skip for a missing mp4box.js."""
    if shutil.which("node") is None:
        oracle_missing("node not installed: mp4box.js cross-check not run", errors)
    if not (E2E_DIR / "node_modules" / "mp4box").exists():
        oracle_missing("tests/e2e/node_modules/mp4box missing: run npm install in tests/e2e (scripts/setup.sh)", errors)
    arg = json.dumps([[label, str(i), str(s)] for label, i, s in items])
    r = subprocess.run(["node", "-e", MP4BOX_PROBE, arg], capture_output=True, text=True, cwd=E2E_DIR, timeout=120)
    assert r.returncode == 0, f"mp4box.js probe failed: {r.stderr[-2000:]}"
    return json.loads(r.stdout)


def check_mp4box(label: str, rep: dict, scheme: str, kind: str, kid: str, errors: list[str]) -> None:
    if rep["errors"]:
        errors.append(f"{label}: mp4box.js errors {rep['errors']}")
    if len(rep["tracks"]) != 1 or not rep["tracks"][0]["tenc"]:
        errors.append(f"{label}: mp4box.js sees sample entries {rep['tracks']}, expected one protected entry with tenc")
        return
    tr = rep["tracks"][0]
    t = tr["tenc"]
    video = kind == "video"
    want = {
        "entry": "encv" if video else "enca",
        "scheme": scheme,
        "schemeVersion": 0x10000,
        "tenc.version": 1 if scheme == "cbcs" else 0,
        "tenc.isProtected": 1,
        "tenc.kid": kid,
        "tenc.pattern": (1, 9) if scheme == "cbcs" and video else (0, 0),
    }
    got = {"entry": tr["entry"], "scheme": tr["scheme"], "schemeVersion": tr["schemeVersion"],
           "tenc.version": t["version"], "tenc.isProtected": t["isProtected"], "tenc.kid": t["kid"],
           "tenc.pattern": (t["crypt"], t["skip"])}
    for k in want:
        if got[k] != want[k]:
            errors.append(f"{label}: mp4box.js reports {k} = {got[k]!r}, expected {want[k]!r}")
    if scheme == "cbcs":
        if t["ivSize"] != 0 or t["constantIvSize"] not in (8, 16) or not t["constantIv"]:
            errors.append(f"{label}: cbcs wants a constant IV (per-sample IV size 0, constant IV of 8/16 bytes); "
                          f"mp4box.js reports ivSize={t['ivSize']} constantIvSize={t['constantIvSize']}")
    elif t["ivSize"] not in (8, 16):
        errors.append(f"{label}: cenc per-sample IV size {t['ivSize']} (mp4box.js), expected 8 or 16")
    ids = {p["systemId"] for p in rep["psshs"]}
    for sysname, sid in SYSTEM_IDS.items():
        if sid not in ids:
            errors.append(f"{label}: no {sysname} pssh ({sid}) in the init's moov; mp4box.js sees {sorted(ids)}")
    common = [p for p in rep["psshs"] if p["systemId"] == SYSTEM_IDS["common"]]
    if common and (common[0]["version"] != 1 or kid not in common[0]["kids"]):
        errors.append(f"{label}: W3C common pssh should be v1 listing KID {kid}: {common[0]}")
    if not rep["trafs"]:
        errors.append(f"{label}: mp4box.js finds no traf in the first segment")
    for i, tf in enumerate(rep["trafs"]):
        needs_aux = scheme == "cenc" or video  # per-sample IVs or subsamples
        if needs_aux:
            missing = [b for b in ("senc", "saiz", "saio") if b not in tf["boxes"]]
            if missing:
                errors.append(f"{label}: traf #{i} lacks {missing} (has {tf['boxes']})")
            elif tf["saiz"] and tf["saiz"]["count"] != tf["samples"]:
                errors.append(f"{label}: traf #{i} saiz sample_count {tf['saiz']['count']} != trun samples {tf['samples']}")


@pytest.mark.parametrize("srv,asset", DASH_CASES, ids=[f"{s}-{a}" for s, a in DASH_CASES])
def test_mp4box_reads_protection(servers, work, srv, asset):
    tracks = dash_tracks(servers, srv, asset, work)
    items = []
    for t in tracks:
        first = work / _SAFE.sub("_", f"{t.what}.seg1")
        init = work / _SAFE.sub("_", f"{t.what}.init")
        first.write_bytes(body(t.seg_urls[0]))
        init.write_bytes(body(t.init_url))
        items.append((t.what, init, first))
    report = mp4box_report(items, [])
    errors = []
    url, text = _mpd(servers[srv].base_url, asset)
    for t in tracks:
        check_mp4box(t.what, report[t.what], SERVERS[srv][asset]["dash"], t.source.codec_type, t.kid, errors)
        if report[t.what]["tracks"] and report[t.what]["tracks"][0]["frma"] != \
                {"h264": "avc1", "hevc": "hvc1", "aac": "mp4a"}.get(t.source.codec_name, t.source.codec_name):
            # the source's own sample entry type is what frma must name
            src_entry = _source_entry(t.source.path, t.source.track_id)
            if report[t.what]["tracks"][0]["frma"] != src_entry:
                errors.append(f"{t.what}: frma {report[t.what]['tracks'][0]['frma']!r}, source sample entry {src_entry!r}")
    _fails(errors)


def _source_entry(path: Path, track_id: int) -> str:
    from oracle import _boxes, _find
    data = path.read_bytes()
    for trak_s, trak_e in _find(data, [b"moov", b"trak"]):
        for t, _ in _find(data, [b"tkhd"], trak_s, trak_e):
            if int.from_bytes(data[t + (20 if data[t] == 1 else 12):][:4], "big") != track_id:
                continue
            for s, e in _find(data, [b"mdia", b"minf", b"stbl", b"stsd"], trak_s, trak_e):
                return next(typ.decode() for typ, _, _ in _boxes(data, s + 8, e))
    return "?"


# --------------------------------------------------------------------------- HLS fMP4 cbcs


@pytest.mark.parametrize("srv,asset", HLS_CASES, ids=[f"{s}-{a}" for s, a in HLS_CASES])
def test_hls_cbcs_signalling(servers, work, srv, asset):
    base = servers[srv].base_url
    master, playlists = hls_media_playlists(base, asset)
    errors = []
    session = [_m3u8_attrs(x) for x in master.splitlines() if x.startswith("#EXT-X-SESSION-KEY:")]
    formats = {s.get("KEYFORMAT", "identity") for s in session}
    if not session:
        errors.append(f"/{asset}/master.m3u8 has no #EXT-X-SESSION-KEY")
    for s in session:
        if s.get("METHOD") != "SAMPLE-AES":
            errors.append(f"/{asset}/master.m3u8 EXT-X-SESSION-KEY METHOD={s.get('METHOD')!r}, expected SAMPLE-AES: {s}")
    seen: dict[tuple, int] = {}
    for s in session:
        k = tuple(s.get(a) for a in ("METHOD", "URI", "IV", "KEYFORMAT", "KEYFORMATVERSIONS"))
        seen[k] = seen.get(k, 0) + 1
    dup = {k: n for k, n in seen.items() if n > 1}
    if dup:
        errors.append(f"/{asset}/master.m3u8 repeats EXT-X-SESSION-KEY tags with the same METHOD, URI, IV, KEYFORMAT "
                      f"and KEYFORMATVERSIONS (RFC 8216 4.3.4.5: MUST NOT): "
                      + "; ".join(f"{n}x {dict(zip(('METHOD', 'URI', 'IV', 'KEYFORMAT', 'KEYFORMATVERSIONS'), k))}"
                                  for k, n in dup.items()))
    if FAIRPLAY_KEYFORMAT not in formats or WIDEVINE_URN not in formats or not (formats & PLAYREADY_KEYFORMATS):
        errors.append(f"/{asset}/master.m3u8 session key formats {sorted(formats)}; expected FairPlay, Widevine, PlayReady")
    for t, text in hls_tracks(servers, srv, asset, work):
        where = f"{t.init_url.rsplit('/', 1)[0]}/index.m3u8"
        if t.scheme != "cbcs" or t.prot.scheme != "cbcs":
            errors.append(f"{where}: URL scheme {t.scheme!r}, init schm {t.prot.scheme!r}; expected cbcs")
        keys = [_m3u8_attrs(x) for x in text.splitlines() if x.startswith("#EXT-X-KEY:")]
        kf = {k.get("KEYFORMAT", "identity"): k for k in keys}
        bad = [k for k in keys if k.get("METHOD") != "SAMPLE-AES"]
        if not keys or bad:
            errors.append(f"{where}: EXT-X-KEY lines {keys}; every one must be METHOD=SAMPLE-AES")
        fp = kf.get(FAIRPLAY_KEYFORMAT)
        if not fp or fp.get("URI") != LICENSE["fairplay"]:
            errors.append(f"{where}: FairPlay EXT-X-KEY {fp}, expected URI {LICENSE['fairplay']!r} (catalog)")
        wv = kf.get(WIDEVINE_URN)
        if not wv:
            errors.append(f"{where}: no Widevine EXT-X-KEY (KEYFORMAT={WIDEVINE_URN})")
        else:
            m = re.match(r"data:text/plain;base64,(.+)$", wv.get("URI", ""))
            try:
                box = parse_pssh(base64.b64decode(m.group(1))) if m else None
                if not box or box.system_id != SYSTEM_IDS["widevine"] or t.kid not in widevine_kids(box.data) + box.kids:
                    errors.append(f"{where}: Widevine EXT-X-KEY URI is not a Widevine pssh naming {t.kid}: {wv.get('URI', '')[:120]}")
            except (AssertionError, ValueError) as e:
                errors.append(f"{where}: Widevine EXT-X-KEY URI does not parse as pssh: {e}")
        if not (set(kf) & PLAYREADY_KEYFORMATS):
            errors.append(f"{where}: no PlayReady EXT-X-KEY (KEYFORMAT one of {sorted(PLAYREADY_KEYFORMATS)})")
        maps = [_m3u8_attrs(x) for x in text.splitlines() if x.startswith("#EXT-X-MAP:")]
        if [m.get("URI") for m in maps] != ["init.mp4"]:
            errors.append(f"{where}: EXT-X-MAP {maps}, expected URI=\"init.mp4\"")
    _fails(errors)


@pytest.mark.parametrize("srv,asset", HLS_CASES, ids=[f"{s}-{a}" for s, a in HLS_CASES])
def test_hls_cbcs_decrypts_to_source(servers, work, srv, asset):
    tracks = [t for t, _ in hls_tracks(servers, srv, asset, work)]
    want = sorted(source_tracks(asset))
    assert sorted(t.name for t in tracks) == want, \
        f"/{asset}/master.m3u8 on '{srv}': tracks {sorted(t.name for t in tracks)}, source has {want}"
    errors = []
    for t in tracks:
        check_decrypts(t, errors)
    check_kid_assignment(tracks, "cbcs", f"{srv}/{asset} HLS", errors)
    # Decryption errors found above are reported even when mp4box.js turns out to be missing.
    report = mp4box_report([(t.what, _write(work, t.what + ".init", body(t.init_url)),
                             _write(work, t.what + ".seg1", body(t.seg_urls[0]))) for t in tracks], errors)
    for t in tracks:
        check_mp4box(t.what, report[t.what], "cbcs", t.source.codec_type, t.kid, errors)
    _fails(errors)


def _write(work: Path, name: str, data: bytes) -> Path:
    p = work / _SAFE.sub("_", name)
    p.write_bytes(data)
    return p


# --------------------------------------------------------------------------- Smooth (PIFF)

PIFF_SENC = bytes.fromhex("a2394f525a9b4f14a2446c427c648df4")


# Every asset whose Smooth policy is cenc on server "a", read from the policy table, and for
# each the server whose DASH for that asset is cenc: its DASH init (same key kind, same KIDs)
# is the init ffmpeg needs to read the Smooth fragments.
SMOOTH_CENC = [a for a, p in POLICY_A.items() if p["smooth"] == "cenc"]


def _cenc_dash_server(asset: str) -> str:
    found = [name for name, pol in SERVERS.items() if pol.get(asset, {}).get("dash") == "cenc"]
    assert found, f"no server serves {asset}'s DASH as cenc: the Smooth check has no init to decrypt with"
    return found[0]


def _piff_senc_count(frag: bytes) -> int:
    """PIFF SampleEncryptionBox uuid boxes directly under moof/traf."""
    from oracle import _boxes, _find
    n = 0
    for s, e in _find(frag, [b"moof", b"traf"]):
        n += sum(1 for typ, cs, _ in _boxes(frag, s, e) if typ == b"uuid" and frag[cs:cs + 16] == PIFF_SENC)
    return n


@pytest.mark.parametrize("asset", SMOOTH_CENC)
def test_smooth_protection(servers, work, asset):
    """The policy says cenc for Smooth, so the manifest MUST carry <Protection> with a
    PlayReady ProtectionHeader naming the tracks' KIDs, every fragment MUST carry PIFF sample
    encryption, and every QualityLevel MUST decrypt (ffmpeg) to a source track's samples,
    every source track being served. The init ffmpeg needs is the same track's cenc DASH
    init (same key kind, same KID) with the fragments' track_ID."""
    base = servers["a"].base_url
    r = get_ok(f"{base}/{asset}/Manifest")
    root = ET.fromstring(r.body)
    prot = root.find("Protection")
    assert prot is not None, (f"/{asset}/Manifest has no <Protection> although {asset}'s Smooth policy is cenc: "
                              f"Smooth served clear or unprotected:\n{r.body[:600]!r}")
    errors = []
    headers = prot.findall("ProtectionHeader")
    pr = [h for h in headers if hex_kid(h.get("SystemID", "0" * 32)) == SYSTEM_IDS["playready"]]
    if len(pr) != 1:
        errors.append(f"Protection has ProtectionHeader SystemIDs {[h.get('SystemID') for h in headers]}, expected "
                      f"one PlayReady ({SYSTEM_IDS['playready']})")
        _fails(errors)
    kids = playready_kids(base64.b64decode(pr[0].text.strip()))
    dash = {t.name: t for t in dash_tracks(servers, _cenc_dash_server(asset), asset, work)}
    matched_sources = set()
    for si in root.findall("StreamIndex"):
        url_tpl = si.get("Url")
        times, t = [], 0
        for c in si.findall("c"):
            t = int(c.get("t", t))
            for _ in range(int(c.get("r", "1"))):
                times.append(t)
                t += int(c.get("d"))
        for ql in si.findall("QualityLevel"):
            what = f"/{asset}/Manifest {si.get('Type')} QualityLevel {ql.get('Bitrate')}"
            frag_urls = [urllib.parse.urljoin(r.url, url_tpl.replace("{bitrate}", ql.get("Bitrate"))
                                              .replace("{start time}", str(x))) for x in times]
            if not frag_urls:
                errors.append(f"{what}: no fragments listed")
                continue
            frags = [body(u) for u in frag_urls]
            unprotected = [u for u, f in zip(frag_urls, frags) if _piff_senc_count(f) == 0]
            if unprotected:
                errors.append(f"{what}: {len(unprotected)} of {len(frags)} fragments carry no PIFF sample-encryption "
                              f"uuid box in moof/traf, e.g. {unprotected[0]}")
            # which source track: the DASH track of the same type whose samples match after decryption
            cands = [d for d in dash.values() if d.source.codec_type == si.get("Type")]
            matched = False
            for d in cands:
                if d.kid not in kids:
                    continue
                init = body(d.init_url)
                tid = init_protection(init)[0].track_id
                data = bytearray(init)
                for f in frags:
                    data += _set_tfhd_track_id(f, tid)
                p = _write(work, f"smooth-{asset}-{si.get('Type')}-{ql.get('Bitrate')}-{d.name}.mp4", bytes(data))
                try:
                    compare_samples(decrypted_framemd5(p, d.key), source_hashes(asset, d.name), "smooth")
                except AssertionError:
                    continue
                matched = True
                matched_sources.add(d.name)
                # The same fragments read WITHOUT the key must not be the source: they are encrypted.
                enc = framemd5(str(p), "0:0")
                want = source_hashes(asset, d.name)
                big = [i for i, (g, w) in enumerate(zip(enc.packets, want.packets))
                       if w.size >= 256 and (g.size, g.md5) == (w.size, w.md5)]
                if big:
                    errors.append(f"{what}: samples {big[:10]} (≥256 bytes) are the source's without decryption")
                break
            if not matched:
                errors.append(f"{what}: fragments decrypt (ffmpeg, keys of ProtectionHeader KIDs {kids}) to no "
                              f"source track's samples")
    missing = sorted(set(source_tracks(asset)) - matched_sources)
    if missing:
        errors.append(f"/{asset}/Manifest: source tracks {missing} are served by no QualityLevel that decrypts to them")
    _fails(errors)


def _set_tfhd_track_id(frag: bytes, track_id: int) -> bytes:
    from oracle import _find
    b = bytearray(frag)
    for s, _ in _find(frag, [b"moof", b"traf", b"tfhd"]):
        b[s + 4:s + 8] = track_id.to_bytes(4, "big")
    return bytes(b)


# --------------------------------------------------------------------------- refusals


def test_clear_routes_refused_and_ams_forms(servers):
    """Every protocol of demo's policy on 'a' is encrypted: the clear CMAF routes are 403.
    AMS: encryption=cenc gives the encrypted DASH (same segment bytes as the clean route),
    an encryption the policy does not offer is 403, and nothing is ever served clear."""
    base = servers["a"].base_url
    errors = []
    for path in ("/demo/video_180p/init.mp4", "/demo/video_180p/1.m4s", "/demo/audio_en/init.mp4",
                 "/demo/video_180p/index.m3u8"):
        r = fetch(base + path)
        if r.status != 403:
            errors.append(f"{path}: {r.status}, expected 403 (no protocol of demo's policy is clear)")
    ams = f"{base}/{LOCATOR}/demo.ism/manifest(format=mpd-time-csf,encryption=cenc)"
    r = fetch(ams)
    if r.status != 200:
        errors.append(f"{ams}: {r.status}, expected 200 (demo's DASH policy is cenc): {r.body[:200]!r}")
    else:
        _, reps = expand_mpd(ams, r.text())
        url, text = _mpd(base, "demo")
        _, clean_reps = expand_mpd(url, text)
        if 'value="cenc"' not in r.text():
            errors.append(f"{ams}: no cenc ContentProtection in the AMS DASH manifest")
        by_id = {x.id: x for x in clean_reps}
        for rep in reps:
            c = by_id.get(rep.id)
            if c is None:
                errors.append(f"{ams}: Representation {rep.id} not in /demo/manifest.mpd")
                continue
            for a, b in ((rep.init_url, c.init_url), (rep.segments[0].url, c.segments[0].url)):
                if hashlib.sha256(body(a)).digest() != hashlib.sha256(body(b)).digest():
                    errors.append(f"{a} and {b} differ ({len(body(a))} vs {len(body(b))} bytes)")
    r = fetch(f"{base}/{LOCATOR}/demo.ism/manifest(format=mpd-time-csf,encryption=cbcs-aapl)")
    if r.status != 403:
        errors.append(f"AMS DASH with encryption=cbcs-aapl (policy offers cenc): {r.status}, expected 403")
    r = fetch(f"{base}/{LOCATOR}/demo.ism/manifest(format=mpd-time-csf)")
    if r.status == 200 and "ContentProtection" not in r.text():
        errors.append("AMS DASH without encryption= served a manifest with no ContentProtection (clear) "
                      "for an asset whose DASH policy is cenc")
    elif r.status not in (200, 403):
        errors.append(f"AMS DASH without encryption=: {r.status}, expected 403 or the encrypted manifest")
    _fails(errors)


# --------------------------------------------------------------------------- 5. determinism


def _all_urls(servers, server: str) -> list[str]:
    base = servers[server].base_url
    urls = []
    for asset in ("demo", "hevc"):
        url, text = _mpd(base, asset)
        urls.append(url)
        for r in expand_mpd(url, text)[1]:
            urls += [r.init_url] + [s.url for s in r.segments]
        murl = f"{base}/{asset}/master.m3u8"
        urls.append(murl)
        for p in hls_media_playlists(base, asset)[1]:
            urls.append(p)
            lines = get_ok(p).text().splitlines()
            urls += [urllib.parse.urljoin(p, m) for m in re.findall(r'#EXT-X-MAP:URI="([^"]+)"', "\n".join(lines))]
            urls += [urllib.parse.urljoin(p, x) for x in lines if x and not x.startswith("#")]
    return urls


def test_same_request_same_bytes(servers):
    """Each URL fetched twice from 'a', and the same path from 'b' (its own process, same
    catalog): identical bodies."""
    a, b = servers["a"].base_url, servers["b"].base_url
    errors = []
    urls = _all_urls(servers, "a")
    for u in urls:
        first = get_ok(u).body
        again = get_ok(u).body
        other = get_ok(b + u[len(a):]).body
        if first != again:
            errors.append(f"{u}: two GETs gave different bodies ({len(first)} vs {len(again)} bytes)")
        if first != other:
            errors.append(f"{u[len(a):]}: server a and server b differ ({len(first)} vs {len(other)} bytes, "
                          f"sha256 {hashlib.sha256(first).hexdigest()[:16]} vs {hashlib.sha256(other).hexdigest()[:16]})")
    assert len(urls) > 20, f"only {len(urls)} URLs checked"
    _fails(errors)


# --------------------------------------------------------------------------- 4. Chromium


def _clear_keys(servers, server, asset, work, wrong=False) -> dict[str, str]:
    out = {}
    for t in dash_tracks(servers, server, asset, work):
        out[t.kid] = f"{int(t.key, 16) ^ (1 << 77):032x}" if wrong else t.key
    return out


BROWSER_JOBS = [  # (id, engine, server, asset, wrong keys)
    ("shaka-cenc", "shaka", "a", "demo", False),
    ("shaka-cbcs", "shaka", "swap", "demo", False),
    ("dashjs-cenc", "dashjs", "a", "demo", False),
    ("shaka-cenc-multi", "shaka", "a", "multi", False),
    ("shaka-cenc-wrong-key", "shaka", "a", "demo", True),
    ("shaka-cbcs-wrong-key", "shaka", "swap", "demo", True),
    ("dashjs-cenc-wrong-key", "dashjs", "a", "demo", True),
]


@pytest.fixture(scope="module")
def browser_results(servers, work):
    require_browser()
    jobs = [{"id": i, "engine": e, "url": f"{servers[s].base_url}/{a}/manifest.mpd",
             "keys": _clear_keys(servers, s, a, work, wrong)} for i, e, s, a, wrong in BROWSER_JOBS]
    results, stderr = run_cenc_player(jobs, work / "browser-jobs.json", 25)
    return {"results": results, "stderr": stderr}


def _explain(r: dict) -> str:
    keep = {k: r.get(k) for k in ("url", "error", "currentTime", "readyState", "buffered", "mediaError", "keySystem",
                                  "playerErrors", "failedRequests", "console", "videoWidth", "decodedFrames")}
    return json.dumps(keep, indent=1)[:4000]


@pytest.mark.parametrize("job", [j for j in BROWSER_JOBS if not j[4]], ids=[j[0] for j in BROWSER_JOBS if not j[4]])
def test_browser_plays_with_clearkey(browser_results, job):
    r = browser_results["results"].get(job[0])
    assert r is not None, f"no result for {job[0]}; stderr:\n{browser_results['stderr'][-2000:]}"
    assert r["ok"], f"{job[1]} did not play {r['url']} with ClearKey past 4 s (expected: plays, no error):\n{_explain(r)}"
    assert r.get("keySystem") in (None, "org.w3.clearkey"), f"key system {r.get('keySystem')}:\n{_explain(r)}"


@pytest.mark.parametrize("job", [j for j in BROWSER_JOBS if j[4]], ids=[j[0] for j in BROWSER_JOBS if j[4]])
def test_browser_fails_with_wrong_key(browser_results, job):
    r = browser_results["results"].get(job[0])
    assert r is not None, f"no result for {job[0]}; stderr:\n{browser_results['stderr'][-2000:]}"
    assert not r["ok"], (f"{job[1]} played {r['url']} past 4 s with WRONG keys (right KIDs): expected a decode "
                         f"error:\n{_explain(r)}")
    assert r.get("mediaKeys"), f"wrong-key run failed before EME was even engaged, so it proves nothing:\n{_explain(r)}"
    # A stall (slow machine, lost request, server hang) is NOT the expected failure: the player
    # itself must report what wrong keys cause. Chromium's ClearKey CDM cannot tell a wrong key
    # (cenc/cbcs have no integrity check), so the first thing to notice is the decoder fed the
    # garbage it decrypted: MEDIA_ERR_DECODE (seen: "PIPELINE_ERROR_DECODE: Failed to send video
    # packet for decoding"). A DRM/licence error (shaka category 6, dash.js protection codes
    # 100-114) counts too.
    why = _decrypt_failure(r, job[1])
    assert why, (f"{job[1]} did not play {r['url']} with wrong keys but reported no decode or DRM error (a stall or "
                 f"an unrelated failure proves nothing about the keys):\n{_explain(r)}")


def _decrypt_failure(r: dict, engine: str) -> str | None:
    """The player error that shows decryption with the given keys failed, or None."""
    for e in r.get("playerErrors") or []:
        if engine == "shaka":
            # shaka.util.Error: category 6 = DRM; 3016 VIDEO_ERROR carries the MediaError code first.
            m = re.match(r"\[(\d+)", e.get("data") or "")
            if e.get("category") == 6 or (e.get("code") == 3016 and m and int(m.group(1)) == 3):
                return f"shaka error {e.get('code')} (category {e.get('category')}) {e.get('data')}"
        else:
            text = str(e.get("message") or e.get("playback") or "")
            if "MEDIA_ERR_DECODE" in text or "PIPELINE_ERROR_DECODE" in text or 100 <= int(e.get("code") or 0) <= 114:
                return f"dash.js error {e}"
    return None


# --------------------------------------------------------------------------- control: the oracles on Shaka Packager's output


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """demo's 180p video and English audio encrypted by Shaka Packager (cenc and cbcs, no
    clear lead) with ORACLES.md's KID/key."""
    d = tmp_path_factory.mktemp("cenc-ref")
    tool = require_tool(PACKAGER, "Shaka Packager")
    kid, key = CENC_KEYS[0]
    out = {}
    for scheme in ("cenc", "cbcs"):
        for kind, f in (("video", "video_180p.cmfv"), ("audio", "audio_en.cmfa")):
            enc = d / f"{scheme}-{kind}.mp4"
            r = subprocess.run([tool, f"in={FIXTURES / 'demo' / f},stream={kind},output={enc}",
                                "--enable_raw_key_encryption", "--keys", f"label=:key_id={kid}:key={key}",
                                "--clear_lead", "0", "--protection_scheme", scheme,
                                "--protection_systems", "Widevine,PlayReady,CommonSystem"],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, f"packager failed: {r.stderr[-1500:]}"
            out[(scheme, kind)] = (enc, Path(f).stem)
    return out


@pytest.mark.parametrize("scheme", ["cenc", "cbcs"])
def test_control_oracles_on_shaka_packager_output(reference, scheme):
    """The same decryption oracle passes on Shaka Packager's encryption, fails with a wrong
    key, and sees encrypted samples without one: the checks above can pass and fail."""
    kid, key = CENC_KEYS[0]
    wrong = f"{int(key, 16) ^ (1 << 77):032x}"
    for kind in ("video", "audio"):
        enc, name = reference[(scheme, kind)]
        want = source_hashes("demo", name)
        compare_samples(decrypted_framemd5(enc, key), want, f"control {scheme} {kind} ffmpeg")
        clear = decrypt_with_packager(enc, kind, kid, key, enc.with_suffix(".clear.mp4"))
        compare_samples(framemd5(str(clear), "0:0"), want, f"control {scheme} {kind} packager")
        bad = count_equal_samples(decrypted_framemd5(enc, wrong), want)
        assert bad <= len(want.packets) // 2, f"control {scheme} {kind}: a wrong key gives {bad} source samples"
        prot = init_protection(enc.read_bytes())
        assert [p.kid for p in prot] == [kid] and prot[0].scheme == scheme, prot
        assert {p.system_id for p in pssh_boxes(enc.read_bytes())} == set(SYSTEM_IDS.values())
