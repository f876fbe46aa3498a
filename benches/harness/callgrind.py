#!/usr/bin/env python3
"""Instructions per request, counted by callgrind (issue #25): a figure that repeats
run to run within about 1 %, unlike req/s on a shared 2-core machine.

    benches/harness/run.sh --instructions [--requests N] [--repeat R]
        every target below; prints the table and the goals, writes
        benches/results/instructions.md and the marked sections of
        benches/results/latest.md, README.md and benches/harness/README-performance.md
    python3 benches/harness/callgrind.py [--requests N] [--repeat R] [--keep] BIN [BIN ...]
        portcullis builds compared (say one from main, one from a branch): the
        bypass and session paths of each, a table on stdout, no file written

Every target runs under `valgrind --tool=callgrind` with one worker thread in
front of the same origin (nginx, one worker, a 22-byte response, not under
valgrind). Once it is up (and, for portcullis, signed in and checked), it serves
two HTTPS keep-alive connections one after the other (TLS 1.3 with
TLS_AES_128_GCM_SHA256, HTTP/1.1, `h2load -c 1`), N/5 requests then N, and the
instructions of each are dumped apart (`callgrind_control --dump`): the
difference over the difference of the request counts is the cost of one
request, the handshake and the connection's set-up cancelled out, start-up and
the login not counted at all. R fresh servers give the median and the min–max.

Targets (suite): bare Pingora (benches/harness/bare-pingora: upstream Pingora,
fat LTO, one codegen unit, mimalloc); portcullis, internal address (bypass) with
10 and with 100 000 internal CIDRs; portcullis with a valid session cookie; nginx
`proxy_pass` (`master_process off`) and HAProxy (`-db`, `nbthread 1`) when
installed. Before a portcullis run is measured, the origin's /whoami (which echoes
the identity headers it received) must show the signed-in user for the session
target and `bypass` for the bypass targets, or the run stops.

Idle memory: each of bare Pingora and portcullis (10 and 100 000 CIDRs), not under
valgrind, one worker thread, VmRSS after start-up and one request.

Caveat: valgrind's emulated CPU does not advertise the SHA extensions (valgrind
3.19), so ring and the sha2 crate take their SSE/AVX code for SHA-256 here even
on a CPU that has them; AES-NI and PCLMUL are advertised and used.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the load harness: origin, configs, login, identity checks)
from bench import (BEGIN, END, HASH, ROOT, SESSION_COOKIE, USER, filler_cidrs, free_port,  # noqa: E402
                   identity_problem, login, machine, progress, replace_marked, run, spawn, stop_all, write)

RESULTS = ROOT / "benches" / "results"
DOCS = [ROOT / "README.md", ROOT / "benches" / "harness" / "README-performance.md"]

KEEP = False  # --keep: leave the callgrind files in the work directory

GOALS_RATIO = {  # instructions per request, from issue #25
    "session_vs_bare": 1.05, "bypass_vs_bare": 1.02, "cidrs_within": 0.02, "session_vs_bare_beyond": 0.75,
}
CIPHER = "TLS_AES_128_GCM_SHA256"  # the client offers only this one, so every server uses it
RSS_GOALS_MIB = {"pc_vs_bare": 16, "cidrs_100k_vs_10": 20}


# ---------------------------------------------------------------- targets

class Spec:
    """One target: how to start a fresh server (argv and port, new config each time), the
    Host it is asked for, what the origin must have been told (identity), and how it stops."""

    def __init__(self, key, label, kind, start, host="bench.localhost", identity=None, stop=signal.SIGTERM):
        self.key, self.label, self.kind, self.start = key, label, kind, start
        self.host, self.identity, self.stop = host, identity, stop
        self.runs = []  # instructions per request, one per repeat
        self.tls = set()  # (protocol, cipher) h2load negotiated


def bare_spec(w, origin, certs):
    def start():
        port = free_port()
        return [str(bench.BARE), "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{origin}",
                "--cert", str(certs / "server.crt"), "--key", str(certs / "server.key"), "--threads", "1"], port
    # SIGINT: Pingora's fast shutdown (SIGTERM waits out a 5-minute grace period).
    return Spec("bare", "bare Pingora", "bare", start, stop=signal.SIGINT)


def portcullis_start(w, binary, origin, certs, cidrs):
    """A function starting portcullis with one worker, `cidrs` internal prefixes (the last one
    127.0.0.0/8, so a loopback client is internal only after the whole table) and two apps on
    the same origin: bypass.localhost (`bypass = "internal_ip"`) and session.localhost (no
    bypass: a login, then the session cookie). Each call writes a fresh config and state."""
    nets = ",\n  ".join(f'"{c}"' for c in filler_cidrs(cidrs - 1) + ["127.0.0.0/8"])
    users = write(w / "users.toml", f'[[user]]\nusername = "{USER}"\npassword = "{HASH}"\npolicy_group = "staff"\n'
                  'groups = ["engineering"]\nemail = "alice@example.com"\n')
    networks = write(w / f"networks-{cidrs}.toml", f"internal = [\n  {nets}\n]\n")

    def start():
        port, admin = free_port(), free_port()
        d = w / f"portcullis-{port}"
        d.mkdir()
        conf = write(d / "portcullis.toml", f"""
[server]
https = "127.0.0.1:{port}"
tls_cert = "{certs}/server.crt"
tls_key = "{certs}/server.key"
state_dir = "{d}/state"
grace_period = "1s"
threads = 1

[admin]
listen = "127.0.0.1:{admin}"

[users]
file = "{users}"

[networks]
{Path(networks).read_text()}
[policy_group.staff]
allow = "always"
otp_skip = "always"

[[app]]
name = "bypass"
hosts = ["bypass.localhost"]
upstream = "127.0.0.1:{origin}"
policy_groups = ["staff"]
bypass = "internal_ip"

[[app]]
name = "session"
hosts = ["session.localhost"]
upstream = "127.0.0.1:{origin}"
policy_groups = ["staff"]
bypass = "never"
""")
        return [str(binary), "run", "--config", conf], port
    return start


def portcullis_specs(w, binary, origin, certs, key="", name=""):
    """The portcullis targets of one binary: bypass and session with 10 CIDRs."""
    start = portcullis_start(w, binary, origin, certs, 10)
    return [Spec(f"pc-bypass-10{key}", f"portcullis bypass (10 CIDRs){name}", "portcullis", start,
                 "bypass.localhost", "bypass"),
            Spec(f"pc-session-10{key}", f"portcullis session (10 CIDRs){name}", "portcullis", start,
                 "session.localhost", "session")]


def nginx_spec(w, origin, certs):
    def start():
        port = free_port()
        conf = write(w / f"nginx-{port}.conf", f"""
daemon off;
master_process off;
worker_processes 1;
pid {w}/nginx-{port}.pid;
error_log {w}/nginx-{port}.err warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {w}/tmp; proxy_temp_path {w}/tmp; fastcgi_temp_path {w}/tmp;
    uwsgi_temp_path {w}/tmp; scgi_temp_path {w}/tmp;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 16; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certs}/server.crt;
        ssl_certificate_key {certs}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22 offers TLS 1.3 only when told to
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
""")
        return ["nginx", "-e", f"{w}/nginx-{port}.err", "-p", str(w), "-c", conf], port
    return Spec("nginx", "nginx proxy_pass", "nginx", start)


def haproxy_spec(w, origin, certs):
    pem = write(w / "haproxy.pem", (certs / "server.crt").read_text() + (certs / "server.key").read_text())

    def start():
        port = free_port()
        conf = write(w / f"haproxy-{port}.cfg", f"""
global
    nbthread 1
    maxconn 1000
defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1
    default_backend be
backend be
    server origin 127.0.0.1:{origin}
""")
        return ["haproxy", "-db", "-f", conf], port
    return Spec("haproxy", "HAProxy", "haproxy", start, stop=signal.SIGUSR1)  # SIGUSR1: soft stop, then exit


# ---------------------------------------------------------------- one measurement

def listening(port):
    """Whether something listens on 127.0.0.1:port, read from /proc/net/tcp: no connection is
    made, so the server under valgrind counts no instructions for the waiting."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == want and f[3] == "0A":
            return True
    return False


def wait_ready(spec, port, proc, log, timeout=600):
    """Waits for the listener, then for the first HTTP answer (any status) to a request to
    /whoami without a cookie; returns that status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{spec.label} exited early (code {proc.returncode}); log {log}:\n{Path(log).read_text()[-3000:]}")
        if listening(port):
            status, _ = bench.whoami(spec.host, port, [])
            if status.isdigit() and status != "000":
                return status
        time.sleep(0.2)
    sys.exit(f"{spec.label}: no answer on 127.0.0.1:{port} after {timeout} s; log {log}")


def prepare(spec, port):
    """The request headers of the measured requests, after checking that the origin receives
    what this target's path must send (portcullis) or that the origin answers (others)."""
    headers = []
    if spec.identity == "session":
        headers = [f"cookie: {SESSION_COOKIE}={login(port, spec.host)}"]
    if spec.identity:
        problem = identity_problem(spec.identity, spec.host, port, headers)
        if problem:
            sys.exit(f"{spec.label} on :{port}: {problem}; the path measured would not be the one named")
    else:
        status, _ = bench.whoami(spec.host, port, [])
        if status != "200":
            sys.exit(f"{spec.label} on :{port}: /whoami answered {status}, wanted 200 from the origin")
    return headers


def h2load(spec, port, headers, requests):
    # One cipher suite for every target (HAProxy would pick AES-256-GCM, the others AES-128-GCM).
    args = ["h2load", "--h1", "-n", str(requests), "-c", "1", "-t", "1", f"--tls13-ciphers={CIPHER}",
            f"--connect-to=127.0.0.1:{port}"]
    for h in headers:
        args += ["-H", h]
    r = run(args + [f"https://{spec.host}:{port}/"], timeout=3600)
    out = r.stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    proto, cipher = re.search(r"TLS Protocol: (\S+)", out), re.search(r"Cipher: (\S+)", out)
    if r.returncode != 0 or not (done and codes) or not (int(done.group(2)) == int(codes.group(1)) == requests):
        sys.exit(f"h2load against {spec.label} did not get {requests} answers 2xx:\n{out}{r.stderr}")
    if not proto or proto.group(1) != "TLSv1.3":
        sys.exit(f"h2load against {spec.label} did not speak TLS 1.3:\n{out}")
    spec.tls.add((proto.group(1), cipher.group(1) if cipher else "?"))


def callgrind_control(proc, *args):
    r = run(["callgrind_control", *args, str(proc.pid)], timeout=300)
    if r.returncode != 0 or "OK" not in r.stdout:
        sys.exit(f"callgrind_control {' '.join(args)} {proc.pid} failed:\n{r.stdout}{r.stderr}")


def dumped_totals(out):
    """{dump name: instructions} from the parts callgrind wrote (out.1, out.2, …)."""
    parts = {}
    for f in out.parent.glob(out.name + ".*"):
        text = f.read_text()
        trigger = re.search(r"^desc: Trigger: dump (\S+)", text, re.M)
        total = re.search(r"^(?:totals|summary): (\d+)", text, re.M)
        if trigger and total:
            parts[trigger.group(1)] = int(total.group(1))
        f.unlink()
    return parts


def instructions_pair(spec, w, low, high, tag):
    """One server under callgrind: instructions of `low` requests, then of `high` requests,
    each on a new TLS connection, counted apart (callgrind_control --dump after each)."""
    argv, port = spec.start()
    out, log = w / f"callgrind-{spec.key}-{tag}.out", w / f"callgrind-{spec.key}-{tag}.log"
    env = dict(os.environ, RUST_LOG="warn")
    # Start-up, the login and the checks run uninstrumented (faster); counting starts just
    # before the measured connections, and each dump resets the counters.
    proc = spawn(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *argv],
                 log, env=env)
    try:
        wait_ready(spec, port, proc, log)
        headers = prepare(spec, port)
        callgrind_control(proc, "--instr=on")
        callgrind_control(proc, "--dump=setup")
        h2load(spec, port, headers, low)
        callgrind_control(proc, "--dump=low")
        h2load(spec, port, headers, high)
        callgrind_control(proc, "--dump=high")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, spec.stop)
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            sys.exit(f"{spec.label} did not stop on {spec.stop!r} within 300 s under valgrind; log {log}")
    if KEEP:
        kept = bench.RELEASE.parent / "callgrind"
        kept.mkdir(parents=True, exist_ok=True)
        for part in out.parent.glob(out.name + ".*"):
            shutil.copy(part, kept / part.name)
        progress(f"kept {kept}/{out.name}.* (setup, low, high: read with callgrind_annotate)")
    parts = dumped_totals(out)
    out.unlink(missing_ok=True)
    if "low" not in parts or "high" not in parts:
        sys.exit(f"callgrind wrote no counts for {spec.label} (parts {sorted(parts)}); log {log}")
    return parts["low"], parts["high"]


def measure(spec, w, requests, repeat):
    low, high = requests // 5, requests
    for i in range(repeat):
        a, b = instructions_pair(spec, w, low, high, str(i))
        spec.runs.append((b - a) / (high - low))
        progress(f"{spec.label}, repeat {i + 1}/{repeat}: {spec.runs[-1]:,.0f} instructions/request "
                 f"({a:,} for {low}, {b:,} for {high} requests)")


def med(spec):
    return statistics.median(spec.runs)


# ---------------------------------------------------------------- memory (not under valgrind)

def idle_rss(spec, w):
    """VmRSS (MiB) of a fresh server after start-up and one request, not under valgrind."""
    argv, port = spec.start()
    log = w / f"rss-{spec.key}.log"
    proc = spawn(argv, log, env=dict(os.environ, RUST_LOG="warn"))
    try:
        status = wait_ready(spec, port, proc, log)
        if status != "200":
            sys.exit(f"{spec.label}: /whoami answered {status} in the memory run")
        time.sleep(0.5)
        kib = sum(int(line.split()[1]) for pid in bench.tree_pids(proc.pid)
                  for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    finally:
        os.killpg(proc.pid, spec.stop)
        proc.wait(timeout=60)
    return kib / 1024


# ---------------------------------------------------------------- report

def ratio_text(a, b):
    return f"{med(a) / med(b):.3f}" if a.runs and b and b.runs else "–"


def table(specs, bare, nginx):
    lines = ["| target | instructions / request (median) | min–max | vs bare Pingora | vs nginx |",
             "|---|---:|---:|---:|---:|"]
    for s in specs:
        if s.runs:
            lines.append(f"| {s.label} | {med(s):,.0f} | {min(s.runs):,.0f}–{max(s.runs):,.0f} | "
                         f"{ratio_text(s, bare)} | {ratio_text(s, nginx)} |")
    return lines


def verdict(name, value, limit, lo, hi, at_most=True, unit="×"):
    """One goal line: met / not met, and whether the repeats' spread straddles the limit."""
    ok = value <= limit if at_most else value >= limit
    straddles = lo <= limit <= hi
    return (f"- {name}: {value:.3f}{unit} ({'≤' if at_most else '≥'} {limit:g}{unit}): "
            f"**{'met' if ok else 'not met'}**" + (" (the limit is inside the repeats' spread)" if straddles else ""))


def goals(by, rss):
    out = []
    bare, nginx = by.get("bare"), by.get("nginx")
    session, bypass, bypass_big = by.get("pc-session-10"), by.get("pc-bypass-10"), by.get("pc-bypass-100000")

    def span(a, b):  # the ratio a/b over the repeats' extremes
        return min(a.runs) / max(b.runs), max(a.runs) / min(b.runs)

    if bare and session:
        out.append(verdict("valid session ≤ 1.05 × bare Pingora", med(session) / med(bare),
                           GOALS_RATIO["session_vs_bare"], *span(session, bare)))
    if bare and bypass:
        out.append(verdict("bypass ≤ 1.02 × bare Pingora", med(bypass) / med(bare), GOALS_RATIO["bypass_vs_bare"],
                           *span(bypass, bare)))
    if bypass and bypass_big:
        r = med(bypass_big) / med(bypass)
        lo, hi = span(bypass_big, bypass)
        lim = GOALS_RATIO["cidrs_within"]
        out.append(f"- bypass with 100 000 CIDRs within 2 % of 10: {r:.3f}× "
                   f"(**{'met' if abs(r - 1) <= lim else 'not met'}**)"
                   + (" (the limit is inside the repeats' spread)" if lo <= 1 - lim <= hi or lo <= 1 + lim <= hi
                      else ""))
    if bare and session:
        out.append(verdict("valid session ≤ 0.75 × bare Pingora (beyond Pingora)", med(session) / med(bare),
                           GOALS_RATIO["session_vs_bare_beyond"], *span(session, bare)))
    if nginx and session:
        lo, hi = span(nginx, session)
        out.append(verdict("valid session ≥ 1.0 × nginx in requests per CPU-second (by instructions: nginx's "
                           "per request over the session's)", med(nginx) / med(session), 1.0, lo, hi,
                           at_most=False))
    if "bare" in rss and "pc-10" in rss:
        d = rss["pc-10"] - rss["bare"]
        out.append(f"- idle RSS, portcullis (10 CIDRs) ≤ bare Pingora + {RSS_GOALS_MIB['pc_vs_bare']} MiB: "
                   f"+{d:.1f} MiB (**{'met' if d <= RSS_GOALS_MIB['pc_vs_bare'] else 'not met'}**)")
    if "pc-10" in rss and "pc-100000" in rss:
        d = rss["pc-100000"] - rss["pc-10"]
        out.append(f"- idle RSS, 100 000 CIDRs ≤ 10 CIDRs + {RSS_GOALS_MIB['cidrs_100k_vs_10']} MiB: "
                   f"+{d:.1f} MiB (**{'met' if d <= RSS_GOALS_MIB['cidrs_100k_vs_10'] else 'not met'}**)")
    return out


def versions():
    v = bench.versions()
    v["valgrind"] = run(["valgrind", "--version"]).stdout.strip().replace("valgrind-", "")
    v["rustc"] = run(["rustc", "--version"]).stdout.split()[1] if run(["rustc", "--version"]).returncode == 0 else "?"
    commit = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip() or "?"
    # Changes to what the binary is built from (not to the harness or the docs).
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", "src", "vendor",
                 "Cargo.toml", "Cargo.lock", "build.rs", "benches/harness/bare-pingora"]).stdout.strip()
    v["portcullis"] = commit + (" with uncommitted changes to its sources" if dirty else "")
    return v


def release_profile(manifest):
    p = tomllib.loads(Path(manifest).read_text()).get("profile", {}).get("release", {})
    return f"lto = {p.get('lto', 'false')!r}, codegen-units = {p.get('codegen-units', 16)}".replace("'", '"')


def section(cfg, specs, rss, stamp, elapsed, heading):
    by = {s.key: s for s in specs}
    bare, nginx = by.get("bare"), by.get("nginx")
    v = versions()
    tls = sorted({t for s in specs for t in s.tls})
    lines = [BEGIN]
    if heading:
        lines += [f"{heading} Instructions per request (callgrind) — {stamp:%Y-%m-%d %H:%M} UTC", ""]
    lines += [
        f"`{cfg.command}`, {stamp:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s; {machine()}.  ",
        f"One worker thread each under `valgrind --tool=callgrind` (every thread of the process counted), HTTPS "
        f"keep-alive ({', '.join(' '.join(t) for t in tls) or 'TLS 1.3'}), HTTP/1.1, h2load; a connection of "
        f"N = {cfg.requests} requests less one of N/5 = {cfg.requests // 5}, median and min–max of R = {cfg.repeat} "
        "server(s); the same nginx origin (22-byte body, not under valgrind) behind every proxy.  ",
        f"Versions: portcullis {v['portcullis']} (release profile: {release_profile(ROOT / 'Cargo.toml')}), "
        f"bare Pingora 0.9.1 from crates.io ({release_profile(ROOT / 'benches/harness/bare-pingora/Cargo.toml')}, "
        f"mimalloc), nginx {v['nginx']}, HAProxy {v['haproxy']}, valgrind {v['valgrind']}, h2load {v['h2load']}, "
        f"rustc {v['rustc']}.",
        "",
        *table(specs, bare, nginx),
        "",
    ]
    if rss:
        names = {"bare": "bare Pingora", "pc-10": "portcullis (10 CIDRs)", "pc-100000": "portcullis (100 000 CIDRs)"}
        lines += ["Idle RSS (VmRSS after start-up and one request, one worker thread, not under valgrind): "
                  + ", ".join(f"{names[k]} {m:.1f} MiB" for k, m in rss.items()) + ".", ""]
    lines += ["Goals of issue #25 (reported, not asserted):", "", *goals(by, rss), "", END]
    return "\n".join(lines)


def write_results(cfg, specs, rss, stamp, elapsed):
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = "\n".join([
        f"# portcullis instructions per request — {stamp:%Y-%m-%d %H:%M} UTC", "",
        "Written by `benches/harness/run.sh --instructions` (benches/harness/callgrind.py). Each figure: a "
        "fresh server under callgrind serves two keep-alive TLS connections, N/5 then N requests, counted apart "
        "(`callgrind_control --dump` after each); the difference of their instructions over the difference of "
        "the request counts is the cost of one request, with the handshake cancelled out and start-up, the "
        "login and the identity check not counted. R servers give the median and min–max. Targets:", "",
        "- **bare Pingora**: benches/harness/bare-pingora, upstream Pingora 0.9.1 (not portcullis's patched "
        "copy), TLS pass-through to the origin, no access control; fat LTO, one codegen unit, mimalloc, rustls "
        "with ring: the strongest build of the baseline.",
        "- **portcullis bypass (N CIDRs)**: an app with `bypass = \"internal_ip\"`; `[networks] internal` holds N "
        "prefixes, 127.0.0.0/8 among them; the origin is checked to receive `X-Portcullis-Auth: bypass`.",
        "- **portcullis session**: an app without bypass, asked with a valid session cookie (one login before "
        "the requests); the origin is checked to receive `X-Portcullis-User: alice`.",
        "- **nginx proxy_pass**: `daemon off; master_process off; worker_processes 1;`, upstream keep-alive.",
        "- **HAProxy**: `-db`, `nbthread 1`, `http-reuse always`.", "",
        "Valgrind's emulated CPU does not advertise the SHA extensions, so SHA-256 (the session cookie's MAC) "
        "runs its SSE/AVX code here even on a CPU with SHA-NI; AES-NI is used.", "",
        section(cfg, specs, rss, stamp, elapsed, "##"), ""])
    (RESULTS / "instructions.md").write_text(report)
    latest = RESULTS / "latest.md"
    old = latest.read_text() if latest.exists() else "# portcullis benchmark results\n"
    latest.write_text(replace_marked(old, section(cfg, specs, rss, stamp, elapsed, "##")))
    for doc in DOCS:
        text = replace_marked(doc.read_text(), section(cfg, specs, rss, stamp, elapsed, None), append=False)
        if text is None:
            progress(f"{doc.relative_to(ROOT)} has no {BEGIN} … {END} section: not updated")
        else:
            doc.write_text(text)
    progress("wrote benches/results/instructions.md and the instruction sections of benches/results/latest.md, "
             + ", ".join(str(d.relative_to(ROOT)) for d in DOCS))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, help="N: the connections carry N/5 and N requests (4000; quick: 200)")
    ap.add_argument("--repeat", type=int, help="R: servers (differential pairs) per figure (3; quick: 1)")
    ap.add_argument("--quick", action="store_true",
                    help="with --suite: smoke check (bare Pingora, portcullis bypass and session; no file written)")
    ap.add_argument("--suite", action="store_true", help="every target, results files written (run.sh --instructions)")
    ap.add_argument("--no-write", action="store_true", help="with --suite: print only, write no file")
    ap.add_argument("--command", default="benches/harness/run.sh --instructions")
    ap.add_argument("--keep", action="store_true",
                    help="keep each callgrind file (parts setup/low/high) to read with callgrind_annotate")
    ap.add_argument("binaries", nargs="*", help="portcullis builds to compare (without --suite)")
    cfg = ap.parse_args()
    global KEEP
    KEEP = cfg.keep
    cfg.requests = cfg.requests or (200 if cfg.quick else 4000)
    cfg.repeat = cfg.repeat or (1 if cfg.quick else 3)
    cfg.no_write = cfg.no_write or cfg.quick
    if cfg.suite == bool(cfg.binaries):
        ap.error("give either --suite or portcullis binaries")
    if cfg.requests < 50 or cfg.repeat < 1:
        ap.error("--requests must be at least 50 and --repeat at least 1")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench.on_signal)
    stamp, t0 = datetime.datetime.now(datetime.timezone.utc), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="portcullis-callgrind-") as tmp:
        w = Path(tmp)
        (w / "tmp").mkdir()
        try:
            specs, rss = run_all(cfg, w)
        finally:
            stop_all()
    elapsed = time.monotonic() - t0
    by = {s.key: s for s in specs}
    print("\n".join(table(specs, by.get("bare"), by.get("nginx"))))
    for i, b in enumerate(cfg.binaries[1:], 1):  # builds compared: each against the first
        print(f"`{b}` against `{cfg.binaries[0]}`: " + ", ".join(
            f"{path} {med(by[f'pc-{path}-10-{i}']) / med(by[f'pc-{path}-10-0']) - 1:+.2%}"
            for path in ("bypass", "session")))
    if cfg.suite and not cfg.quick:
        print()
        print("\n".join(goals(by, rss)))
        if rss:
            print("idle RSS: " + ", ".join(f"{k} {m:.1f} MiB" for k, m in rss.items()))
        if not cfg.no_write:
            write_results(cfg, specs, rss, stamp, elapsed)


def run_all(cfg, w):
    portcullis = Path(cfg.binaries[0]).resolve() if cfg.binaries else bench.RELEASE / "portcullis"
    certs = w / "certs"
    r = run([str(portcullis), "certs", "dev", "--dir", str(certs)])
    if r.returncode != 0:
        sys.exit(f"portcullis certs dev failed: {r.stdout}{r.stderr}")
    origin = bench.start_origin(w)
    progress(f"origin (nginx, 1 worker, not under valgrind) on 127.0.0.1:{origin}; {machine()}")
    rss = {}
    if cfg.quick:
        specs = [bare_spec(w, origin, certs), *portcullis_specs(w, portcullis, origin, certs)]
    elif cfg.suite:
        specs = [bare_spec(w, origin, certs), *portcullis_specs(w, portcullis, origin, certs),
                 Spec("pc-bypass-100000", "portcullis bypass (100 000 CIDRs)", "portcullis",
                      portcullis_start(w, portcullis, origin, certs, 100_000), "bypass.localhost", "bypass")]
        for have, make in (("nginx", nginx_spec), ("haproxy", haproxy_spec)):
            if run(["sh", "-c", f"command -v {have}"]).returncode == 0:
                specs.append(make(w, origin, certs))
            else:
                progress(f"{have} is not installed: left out")
        by = {s.key: s for s in specs}
        for key, spec in (("bare", by["bare"]), ("pc-10", by["pc-bypass-10"]), ("pc-100000", by["pc-bypass-100000"])):
            rss[key] = idle_rss(spec, w)
            progress(f"idle RSS of {spec.label.replace(' bypass', '')}: {rss[key]:.1f} MiB")
    else:
        specs = [s for i, b in enumerate(cfg.binaries)
                 for s in portcullis_specs(w, Path(b).resolve(), origin, certs, f"-{i}", f", `{b}`")]
    for spec in specs:
        measure(spec, w, cfg.requests, cfg.repeat)
    return specs, rss


if __name__ == "__main__":
    main()
