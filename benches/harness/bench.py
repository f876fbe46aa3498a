#!/usr/bin/env python3
"""Load harness of portcullis (issue #8): one machine, one run, interleaved rounds.

Starts an origin (nginx, small keep-alive response) and, each in front of it,
nginx `proxy_pass`, HAProxy, a bare Pingora proxy (benches/harness/bare-pingora, a
crate of its own: upstream Pingora, fat LTO) and portcullis in several modes and
network-table sizes, all on 127.0.0.0/8 with
free ports and their own configs. Measures every target in interleaved rounds
(A B C ... A B C ...) with the same connections and duration, takes the median,
and writes benches/results/latest.md and latest.svg (plus dated copies).

TLS handshakes (`openssl s_time`) are measured against the same proxies and against a
second instance of each that requests a client certificate from one client CA: bare
Pingora `--client-ca`, portcullis with `[device_certificates]` naming that CA, nginx
`ssl_verify_client optional`, HAProxy `verify optional`.

Before and after the rounds, every portcullis target is asked for the origin's
`/whoami`, which echoes the identity headers the origin received: the session
targets must have been forwarded as the signed-in user, the bypass targets as
`bypass`; otherwise the run stops (a run where the fast path was not taken must
not pass for one).

Run through benches/harness/run.sh, which builds and installs what is missing.
Figures are reported, never asserted: the quick mode only checks that every
target answered with the status it should (a smoke check of the harness).
The instruction-count mode is callgrind.py (`run.sh --instructions`), which
reuses this module's servers.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where cargo put the binaries: $CARGO_TARGET_DIR (relative to the repository, as
# run.sh runs cargo there) or target/. run.sh builds bare Pingora, a crate of its
# own, into bare-pingora/ under it.
TARGET = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
RELEASE = TARGET / "release"
BARE = TARGET / "bare-pingora" / "release" / "bare-pingora"
RESULTS = ROOT / "benches" / "results"
HASH = "$argon2id$v=19$m=19456,t=2,p=1$ew2XREgJJ/KSvmyjUGd9lg$0L4bmN+TdB6ufRDxKH+vUdnmjA0dGQP95mMedCgwR78"
SESSION_COOKIE = "__Host-portcullis-session"
THREADS = 2  # proxy worker threads for every proxy (portcullis, bare Pingora, nginx, HAProxy)
CLK_TCK = os.sysconf("SC_CLK_TCK")
REQUESTS_CERT = " (requests client cert)"  # label suffix of a listener started with the client CA
T0 = time.monotonic()

# ---------------------------------------------------------------- processes

CHILDREN = []


def stop_all():
    """Stops everything the harness started (called on exit and on signals)."""
    for p in reversed(CHILDREN):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for p in reversed(CHILDREN):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    CHILDREN.clear()


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def spawn(args, log, env=None):
    """Starts a long-running server in its own process group (stopped on exit)."""
    f = open(log, "wb")
    p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                         env=env, cwd=ROOT)
    CHILDREN.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, log, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"process exited early (code {proc.returncode}); log {log}:\n{Path(log).read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port} after {timeout}s; log {log}")


def progress(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, check=False, **kw)


# ---------------------------------------------------------------- /proc

def tree_pids(pid):
    """The process and its descendants (nginx master + workers)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)
        except OSError:
            pass
    return total / CLK_TCK


def peak_rss_mib(pids):
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def machine_busy_seconds():
    """CPU time every process on the machine has used, from /proc/stat. Interrupt and
    softirq time (loopback traffic, largely the harness's own) count on neither side."""
    user, nice, system = (int(x) for x in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / CLK_TCK


def harness_cpu_seconds():
    """CPU time of the harness: itself, the tools it ran and waited for (h2load, s_time,
    curl), and the servers it started and their workers, still running."""
    t = os.times()
    servers = [pid for p in CHILDREN if p.poll() is None for pid in tree_pids(p.pid)]
    return t.user + t.system + t.children_user + t.children_system + cpu_seconds(servers)


class OtherLoad:
    """How much of the machine processes outside the harness used over a stretch of the run
    (another build or test suite on a shared CI machine): figures taken then are disturbed."""

    def __init__(self):
        self.t, self.busy, self.own = time.monotonic(), machine_busy_seconds(), harness_cpu_seconds()

    def share(self):
        wall = time.monotonic() - self.t
        other = (machine_busy_seconds() - self.busy) - (harness_cpu_seconds() - self.own)
        return max(0.0, other) / (wall * os.cpu_count()) if wall > 0 else float("nan")


# ---------------------------------------------------------------- targets

class Target:
    """One thing to measure. `identity`: what the origin must have been told about the
    client ("session": the signed-in user; "bypass": admitted by bypass; None: not checked)."""

    def __init__(self, key, label, kind, port, proc, host="bench.localhost", headers=(), expect="2xx",
                 identity=None):
        self.key, self.label, self.kind, self.port, self.proc = key, label, kind, port, proc
        self.host, self.headers, self.expect, self.identity = host, list(headers), expect, identity
        self.pids = [proc.pid]
        self.runs, self.fixed = [], []

    def url(self):
        return f"https://{self.host}:{self.port}/"


USER = "alice"  # the user the session targets are signed in as


def whoami(host, port, headers):
    """Asks the origin's /whoami through the proxy: (HTTP status, {"user": …, "auth": …}), the
    identity headers the origin received with a request like the measured ones."""
    args = ["curl", "-sk", "--max-time", "60", "-w", "\n%{http_code}", "--resolve", f"{host}:{port}:127.0.0.1"]
    for h in headers:
        args += ["-H", h]
    r = run(args + [f"https://{host}:{port}/whoami"])
    body, _, status = r.stdout.rpartition("\n")
    seen = dict(m.groups() for m in re.finditer(r"(user|auth)=(\S*)", body)) if status == "200" else {}
    return (status if r.returncode == 0 else f"curl exit {r.returncode}"), seen


def identity_problem(identity, host, port, headers):
    """None when the origin received what the target's path must send, else what went wrong.

    session: forwarded as the signed-in user, not by bypass; bypass: 200 (no redirect to the
    login page), admitted by bypass. A run that fails this measured something else."""
    status, seen = whoami(host, port, headers)
    if identity == "session":
        ok = status == "200" and seen.get("user") == USER and seen.get("auth") not in (None, "", "bypass")
        want = f"200 with user={USER} and a login's auth"
    elif identity == "bypass":
        ok = status == "200" and seen.get("auth") == "bypass"
        want = "200 with auth=bypass"
    else:
        raise ValueError(identity)
    return None if ok else f"the origin's /whoami answered {status} {seen or ''} (wanted {want})"


def check_identity(t, when):
    """Stops the run if the origin did not receive the identity the target is meant to measure."""
    if t.identity:
        problem = identity_problem(t.identity, t.host, t.port, t.headers)
        if problem:
            sys.exit(f"{t.label} on :{t.port}, {when}: {problem}; the path measured is not the one named")


def write(path, text):
    Path(path).write_text(text)
    return str(path)


def start_origin(w):
    port = free_port()
    conf = write(w / "origin.conf", f"""
worker_processes 1;
daemon off;
pid {w}/origin.pid;
error_log {w}/origin.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {w}/tmp; proxy_temp_path {w}/tmp; fastcgi_temp_path {w}/tmp;
    uwsgi_temp_path {w}/tmp; scgi_temp_path {w}/tmp;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{ default_type text/plain; return 200 "hello from the origin\\n"; }}
        # What the proxy told the origin about the client (identity_check reads it).
        location = /whoami {{
            default_type text/plain;
            return 200 "user=$http_x_portcullis_user auth=$http_x_portcullis_auth\\n";
        }}
    }}
}}
""")
    p = spawn(["nginx", "-e", f"{w}/origin.err", "-p", str(w), "-c", conf], w / "origin.log")
    wait_port(port, p, w / "origin.log")
    return port


def start_nginx(w, origin, certs, client_ca=None, key="nginx"):
    port = free_port()
    # With a client CA: request a certificate, verify one when presented (`optional`).
    verify = (f"ssl_client_certificate {client_ca};\n        ssl_verify_client optional;" if client_ca else "")
    conf = write(w / f"{key}.conf", f"""
worker_processes {THREADS};
daemon off;
pid {w}/{key}.pid;
error_log {w}/{key}.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {w}/tmp; proxy_temp_path {w}/tmp; fastcgi_temp_path {w}/tmp;
    uwsgi_temp_path {w}/tmp; scgi_temp_path {w}/tmp;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 128; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{port} ssl http2 reuseport;
        ssl_certificate {certs}/server.crt;
        ssl_certificate_key {certs}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22 offers TLS 1.3 only when told to
        {verify}
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
""")
    p = spawn(["nginx", "-e", f"{w}/{key}.err", "-p", str(w), "-c", conf], w / f"{key}.log")
    wait_port(port, p, w / f"{key}.log")
    return Target(key, "nginx proxy_pass" + (REQUESTS_CERT if client_ca else ""), "nginx", port, p)


def start_haproxy(w, origin, certs, client_ca=None, key="haproxy"):
    port = free_port()
    pem = write(w / "haproxy.pem", (certs / "server.crt").read_text() + (certs / "server.key").read_text())
    verify = f" ca-file {client_ca} verify optional" if client_ca else ""
    conf = write(w / f"{key}.cfg", f"""
global
    nbthread {THREADS}
    maxconn 4000
    tune.ssl.default-dh-param 2048
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{port} ssl crt {pem}{verify} alpn h2,http/1.1
    default_backend be
backend be
    server origin 127.0.0.1:{origin}
""")
    p = spawn(["haproxy", "-db", "-f", conf], w / f"{key}.log")
    wait_port(port, p, w / f"{key}.log")
    return Target(key, "HAProxy" + (REQUESTS_CERT if client_ca else ""), "haproxy", port, p)


def start_bare(w, origin, certs, client_ca=None, key="bare"):
    port = free_port()
    args = [str(BARE), "--listen", f"127.0.0.1:{port}", "--upstream",
            f"127.0.0.1:{origin}", "--cert", str(certs / "server.crt"), "--key", str(certs / "server.key"),
            "--threads", str(THREADS)]
    if client_ca:
        args += ["--client-ca", str(client_ca)]
    p = spawn(args, w / f"{key}.log")
    wait_port(port, p, w / f"{key}.log")
    label = "bare Pingora" + (REQUESTS_CERT if client_ca else "")
    return Target(key, label, "bare", port, p)


def filler_cidrs(n, seed=8):
    """n distinct IPv4 prefixes (/12../32, host bits clear) none of which covers 127.0.0.0/8."""
    rng, seen = random.Random(seed), set()
    while len(seen) < n:
        length = rng.choice([16, 20, 22, 24, 24, 24, 26, 28, 32, 32])
        first = rng.choice([o for o in range(1, 224) if o != 127])
        addr = (first << 24) | rng.getrandbits(24)
        addr &= (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
        seen.add(f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}/{length}")
    return sorted(seen)


def start_portcullis(w, origin, certs, cidrs, device_ca=None):
    """One portcullis with two apps: fast (session), bypass (loopback network), same upstream.

    With `device_ca` (a directory holding ca.crt and ca.key), `[device_certificates]`
    names that CA: the listener requests a client certificate and verifies one against
    it, and both apps have `device_cert = "request"`.
    """
    d = w / f"portcullis-{cidrs}{'-device' if device_ca else ''}"
    d.mkdir()
    port, admin = free_port(), free_port()
    write(d / "users.toml", f'[[user]]\nusername = "{USER}"\npassword = "{HASH}"\npolicy_group = "staff"\n'
          'groups = ["engineering"]\nemail = "alice@example.com"\n')
    nets = ",\n  ".join(f'"{c}"' for c in filler_cidrs(cidrs - 1))
    devices, per_app = "", ""
    if device_ca:
        devices = (f'\n[device_certificates]\ncontracted = 50\nca_cert = "{device_ca}/ca.crt"\n'
                   f'ca_key = "{device_ca}/ca.key"\n')
        per_app = 'device_cert = "request"\n'
    conf = write(d / "portcullis.toml", f"""
[server]
https = "127.0.0.1:{port}"
tls_cert = "{certs}/server.crt"
tls_key = "{certs}/server.key"
state_dir = "{d}/state"
grace_period = "1s"
threads = {THREADS}

[admin]
listen = "127.0.0.1:{admin}"

[users]
file = "{d}/users.toml"

[networks]
# {cidrs - 1} prefixes that do not hold 127.0.0.1, plus the loopback network: {cidrs} in all.
internal = [
  {nets}
]
loopback = ["127.0.0.0/8"]

[policy_group.staff]
allow = "always"
otp_skip = "always"
{devices}
[[app]]
name = "fast"
hosts = ["fast.localhost"]
upstream = "127.0.0.1:{origin}"
policy_groups = ["staff"]
bypass = "internal_ip"
{per_app}
[[app]]
name = "bypass"
hosts = ["bypass.localhost"]
upstream = "127.0.0.1:{origin}"
policy_groups = ["staff"]
bypass = "internal_ip or network(\\"loopback\\")"
{per_app}""")
    log = d / "portcullis.log"
    check = run([str(RELEASE / "portcullis"), "check", "--config", conf])
    if check.returncode != 0:
        sys.exit(f"portcullis check failed for {conf}:\n{check.stdout}{check.stderr}")
    env = dict(os.environ, RUST_LOG=os.environ.get("BENCH_RUST_LOG", "info"))
    p = spawn([str(RELEASE / "portcullis"), "run", "--config", conf], log, env=env)
    wait_port(port, p, log)
    if device_ca:  # measured for TLS handshakes only: the bypass app answers without a login
        return Target("pc-device", "portcullis (device certificates)", "portcullis", port, p, "bypass.localhost")
    cookie = login(port)
    tag = f"{cidrs:,} CIDRs".replace(",", " ")
    return [
        Target(f"pc-fast-{cidrs}", f"portcullis session ({tag})", "portcullis", port, p, "fast.localhost",
               [f"cookie: {SESSION_COOKIE}={cookie}"], identity="session"),
        Target(f"pc-bypass-{cidrs}", f"portcullis bypass ({tag})", "portcullis", port, p, "bypass.localhost",
               identity="bypass"),
        Target(f"pc-challenge-{cidrs}", f"portcullis challenge ({tag})", "portcullis", port, p, "fast.localhost",
               ["sec-fetch-mode: navigate", "accept: text/html"], expect="3xx"),
    ]


def login(port, host="fast.localhost"):
    r = run(["curl", "-sk", "-o", "/dev/null", "-D", "-", "--resolve", f"{host}:{port}:127.0.0.1",
             "-H", "content-type: application/json", "--data",
             json.dumps({"username": USER, "password": "portcullis-demo"}),
             f"https://{host}:{port}/.portcullis/api/login"])
    m = re.search(rf"^set-cookie:\s*{re.escape(SESSION_COOKIE)}=([^;\r\n]+)", r.stdout, re.I | re.M)
    if not m:
        sys.exit(f"login on :{port} gave no session cookie:\n{r.stdout}{r.stderr}")
    return m.group(1)


def make_client_cert(w):
    """A client CA and a client certificate it signs (ECDSA P-256) for the mutual-TLS handshake
    figures, plus `other.crt`/`other.key`, signed by another CA, which every listener must refuse.

    Every listener that requests a client certificate uses this CA (portcullis as its device CA).
    """
    c = w / "client"
    c.mkdir()
    o = lambda *a: subprocess.run(["openssl", *a], cwd=c, check=True, capture_output=True)
    (c / "ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for ca, leaf in (("ca", "client"), ("other-ca", "other")):
        o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
          "-subj", f"/CN=bench {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.crt")
        o("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN=bench {leaf}",
          "-keyout", f"{leaf}.key", "-out", f"{leaf}.csr")
        o("x509", "-req", "-in", f"{leaf}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
          "-days", "2", "-extfile", "ext", "-out", f"{leaf}.crt")
    return c


def check_client_certs(t, client):
    """Proves the listener requests and verifies client certificates before it is measured.

    `openssl s_time` cannot tell: over TLS 1.3 it closes the connection right after its own
    Finished, before the server's verdict on its certificate could reach it. So one request
    each with curl: with the client certificate it must be answered 2xx; with a certificate
    of another CA it must not be (a handshake alert, or nginx's 400 under `optional`).
    """
    def status(leaf):
        args = ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                "--resolve", f"{t.host}:{t.port}:127.0.0.1", t.url()]
        if leaf:
            args += ["--cert", str(client / f"{leaf}.crt"), "--key", str(client / f"{leaf}.key")]
        r = run(args)
        return r.stdout.strip() if r.returncode == 0 else f"curl exit {r.returncode}"
    got = {leaf: status(leaf) for leaf in ("client", None, "other")}
    if not (got["client"].startswith("2") and got[None].startswith("2") and not got["other"].startswith("2")):
        sys.exit(f"{t.label} on :{t.port} does not check client certificates as configured: answers {got} "
                 "(wanted 2xx with the client certificate and without one, no 2xx with another CA's)")
    return got


# ---------------------------------------------------------------- load

def h2load(t, w, duration, warmup, conns, rps=None):
    """One h2load run over HTTP/1.1 + TLS, keep-alive; returns the measurement."""
    log = w / f"h2load-{t.key}.tsv"
    args = ["h2load", "--h1", "-t", "1", "-c", str(conns), "-D", str(duration), "--warm-up-time", f"{int(warmup * 1000)}ms",
            f"--connect-to=127.0.0.1:{t.port}", f"--log-file={log}", t.url()]
    for h in t.headers:
        args += ["-H", h]
    if rps:
        args += [f"--rps={rps / conns:.3f}"]
    c0 = cpu_seconds(t.pids)
    r = run(args, timeout=duration + warmup + 60)
    c1 = cpu_seconds(t.pids)
    out = r.stdout
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not (m and done and codes):
        sys.exit(f"h2load against {t.label} failed:\n{out}{r.stderr}")
    lat = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line.count("\t") >= 2)
    log.unlink()
    n = int(done.group(1))
    status = dict(zip(["2xx", "3xx", "4xx", "5xx"], map(int, codes.groups())))
    cpu = c1 - c0  # includes the warm-up: divided by every request answered in the run
    total_requests = max(1, len(lat))
    return {
        "rps": float(m.group(3)),
        "p50": pct(lat, 50), "p99": pct(lat, 99),
        "cpu_us": cpu / total_requests * 1e6,
        "requests": n, "status": status, "ok": status.get(t.expect, 0) == n and n > 0,
    }


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def s_time(port, seconds, reuse=False, cert=None, parallel=2):
    """Handshakes per second from `parallel` openssl s_time clients (TLS 1.3, ECDHE P-256/X25519):
    (handshakes, wall seconds, how many resumed, the clients' CPU seconds)."""
    # Resumption is measured over TLS 1.2 (session IDs/tickets): s_time closes a TLS 1.3
    # connection before reading the server's post-handshake ticket, so it cannot resume there.
    args = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-time", str(seconds)]
    args += ["-reuse", "-tls1_2"] if reuse else ["-new"]
    if cert:
        args += ["-cert", str(cert / "client.crt"), "-key", str(cert / "client.key")]
    start, t0 = time.monotonic(), os.times()
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(parallel)]
    outs = [p.communicate(timeout=seconds + 30)[0] for p in procs]
    wall, t1 = time.monotonic() - start, os.times()  # the clients are waited for: their CPU is in t1
    client_cpu = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
    n = resumed = 0
    for o in outs:
        counts = re.findall(r"(\d+) connections in [\d.]+s;", o)
        if not counts:
            sys.exit(f"openssl s_time failed on :{port}:\n{o}")
        n += int(counts[-1])
        resumed += sum(line.count("r") for line in o.splitlines() if re.fullmatch(r"[*r]+", line))
    return n, wall, resumed, client_cpu


FULL, RESUMED = "full (TLS 1.3)", "resumed (TLS 1.2)"
WITH_CERT, NO_CERT = "client certificate", "none presented"


def tls_plan(targets, mtls, client):
    """The handshake rows: each proxy as configured for the load (no client certificate asked
    for), then each listener that requests one, with the certificate presented, without it,
    and resumed with it (a resumed session carries the certificate of its full handshake)."""
    rows = []
    for key in ("bare", "pc-fast-10", "nginx", "haproxy"):
        t = targets[key]
        for mode, reuse in ((FULL, False), (RESUMED, True)):
            rows.append({"target": t, "mode": mode, "reuse": reuse, "cert": None, "mtls": False})
    for t in mtls.values():
        for mode, reuse, cert in ((f"{FULL}, {WITH_CERT}", False, client), (f"{FULL}, {NO_CERT}", False, None),
                                  (f"{RESUMED}, {WITH_CERT}", True, client)):
            rows.append({"target": t, "mode": mode, "reuse": reuse, "cert": cert, "mtls": True})
    for row in rows:
        row["label"] = "portcullis" if row["target"].key.startswith("pc-fast") else row["target"].label
        row["runs"] = []
    return rows


def tls_row(tls, key, mode):
    return next((r for r in tls if r["target"].key == key and r["mode"] == mode and r["runs"]), None)


# ---------------------------------------------------------------- report

def median(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def spread(runs, key, fmt):
    """min–max of one figure over the rounds."""
    return "–".join(fmt.format(f(r[key] for r in runs)) for f in (min, max))


def summary(t, runs):
    return {k: median([r[k] for r in runs]) for k in ("rps", "p50", "p99", "cpu_us")}


def machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {model}, Linux {platform.release()}"


def versions():
    def first(args):
        r = run(args)
        return (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else "?"
    return {
        "nginx": first(["nginx", "-v"]).replace("nginx version: nginx/", ""),
        "haproxy": first(["haproxy", "-v"]).split()[2],
        "h2load": first(["h2load", "--version"]).replace("h2load ", ""),
        "openssl": " ".join(first(["openssl", "version"]).split()[1:2]),
    }


def fmt_us(us):
    if us != us:
        return "–"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def write_report(cfg, targets, fixed, tls, elapsed, stamp, other):
    bare, nginx = targets["bare"], targets["nginx"]
    sb, sn = summary(bare, bare.runs), summary(nginx, nginx.runs)
    lines = [
        f"# portcullis load benchmark — {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}.  ",
        f"Command: `{cfg.command}` ({'quick mode: smoke check, figures not meaningful' if cfg.quick else 'full'}), "
        f"{elapsed:.0f} s.  ",
        f"Load: h2load, HTTP/1.1 over TLS 1.3, keep-alive, {cfg.conns} connections, 1 client thread, "
        f"{cfg.duration} s per run after {cfg.warmup} s warm-up, {cfg.rounds} interleaved round(s), median shown. "
        f"Every proxy runs {THREADS} worker threads/processes in front of one nginx origin "
        "(1 worker, 22-byte body), all on the same cores as the load generator.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ", Pingora 0.9.1 (rustls).  ",
        "Other load: processes outside the harness used " + ", ".join(f"{v:.0%} of the machine's CPU during {k}"
                                                                      for k, v in other.items())
        + " (0% on a quiet machine; figures taken beside other work are slower and noisier).",
        "",
        "## Throughput (closed loop, as fast as it goes)",
        "",
        "Proxy CPU / req is the steadier figure on a shared machine (user + system CPU of the proxy's "
        "processes over the run, divided by its requests); min–max are over the rounds. "
        + (f"The origin's `/whoami`, asked through the proxy before and after the rounds, received the "
           f"signed-in user from every session target and `bypass` from every bypass target "
           f"({len(cfg.identity_checked)} checked), so the paths measured are the ones named."
           if getattr(cfg, "identity_checked", None) else ""),
        "",
        "| target | req/s | min–max | proxy CPU / req | min–max | p50 | p99 | peak RSS | vs bare Pingora "
        "(req/s) | vs bare Pingora (CPU / req) | vs nginx (req/s) | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in targets.values():
        if not t.runs:
            continue
        s = summary(t, t.runs)
        rss = peak_rss_mib(t.pids)
        ok = all(r["ok"] for r in t.runs)
        lines.append(
            f"| {t.label} | {s['rps']:,.0f} | {spread(t.runs, 'rps', '{:,.0f}')} | {s['cpu_us']:.1f} µs | "
            f"{spread(t.runs, 'cpu_us', '{:.1f}')} µs | {fmt_us(s['p50'])} | {fmt_us(s['p99'])} | "
            f"{rss:.1f} MiB | {s['rps'] / sb['rps']:.1%} | {s['cpu_us'] / sb['cpu_us']:.1%} | "
            f"{s['rps'] / sn['rps']:.1%} | "
            f"{'all ' + t.expect if ok else 'UNEXPECTED ' + json.dumps(t.runs[-1]['status'])} |")
    lines += ["", f"## Fixed rate ({cfg.fixed_rate:,.0f} req/s, about half of bare-Pingora saturation)", "",
              "| target | achieved req/s | p50 | p99 | p99 added over bare Pingora | proxy CPU / req |",
              "|---|---:|---:|---:|---:|---:|"]
    fb = summary(bare, bare.fixed) if bare.fixed else None
    for t in fixed:
        s = summary(t, t.fixed)
        added = s["p99"] - fb["p99"] if fb else float("nan")
        lines.append(f"| {t.label} | {s['rps']:,.0f} | {fmt_us(s['p50'])} | {fmt_us(s['p99'])} | "
                     f"{'–' if t is bare else f'{added:+.0f} µs'} | {s['cpu_us']:.1f} µs |")
    lines += tls_section(cfg, tls)
    lines += goals(cfg, targets, fixed, tls)
    text = "\n".join(lines) + "\n"
    return text


def tls_section(cfg, tls):
    def table(rows):
        out = ["| target | handshake | handshakes/s | min–max over rounds | proxy CPU / handshake | "
               "s_time CPU / handshake | resumed |", "|---|---|---:|---:|---:|---:|---:|"]
        for row in rows:
            rates = [r["rate"] for r in row["runs"]]
            m = {k: median([r[k] for r in row["runs"]]) for k in ("rate", "cpu_us", "client_us", "resumed")}
            out.append(f"| {row['label']} | {row['mode']} | {m['rate']:,.0f} | {min(rates):,.0f}–{max(rates):,.0f} | "
                       f"{m['cpu_us']:.0f} µs | {m['client_us']:.0f} µs | {m['resumed']:.0%} |")
        return out

    return [
        "", "## TLS handshakes (a new connection each time, no request)", "",
        f"{cfg.tls_parallel} `openssl s_time` client(s) in parallel for {cfg.tls_seconds} s per measurement, "
        f"{cfg.rounds} interleaved round(s), median shown. The `s_time` clients share the cores with the proxy "
        "and spend more CPU per handshake than it does (their column: OpenSSL's client side, and the kernel's "
        "connection set-up and tear-down in their system time), so they bound handshakes/s, which therefore "
        "understates differences between proxies; the proxy's CPU per handshake is the figure that travels. "
        "`s_time` makes a new connection each time (`-new`; `-reuse` resumes the first session); a "
        "load generator such as oha resumes TLS sessions even with keep-alive off, so it would not measure "
        "full handshakes. Resumption is measured over TLS 1.2: `s_time` closes a TLS 1.3 connection before "
        "the server's session ticket arrives.", "",
        "### Listener as configured for the load (no client certificate requested)", "",
        *table([r for r in tls if not r["mtls"] and r["runs"]]), "",
        "### Listener requests a client certificate (optional for the client)", "",
        "Every listener here sends a CertificateRequest naming the harness's client CA (ECDSA P-256) and verifies "
        "a presented certificate against it: bare Pingora `--client-ca`; portcullis with `[device_certificates]` "
        "whose `ca_cert`/`ca_key` are that CA (its device CA) and `device_cert = \"request\"` on its apps; nginx "
        "`ssl_client_certificate` + `ssl_verify_client optional`; HAProxy `ca-file` + `verify optional`. Before "
        "measuring, each answered a request with the client certificate and one without, and refused a "
        "certificate signed by another CA (`s_time` cannot see a refusal: over TLS 1.3 it closes before the "
        "server's verdict). The client certificate (ECDSA P-256, signed by the CA directly) is not registered "
        "in portcullis's device registry: the handshake checks the chain only; whether a certificate is "
        "registered, active and the user's is checked per request (one lookup in the in-memory registry), "
        "not in the handshake, so registration does not change these figures.", "",
        *table([r for r in tls if r["mtls"] and r["runs"]]), "",
    ]


def tls_goals(tls):
    """The handshake goals, with a client certificate presented to listeners that request one."""
    mode = f"{FULL}, {WITH_CERT}"
    pc, bare, nginx = (tls_row(tls, k, mode) for k in ("pc-device", "bare-mtls", "nginx-mtls"))
    if not (pc and bare and nginx):
        return []
    m = lambda row, k: median([r[k] for r in row["runs"]])
    spread = lambda row: "–".join(f"{f([r['rate'] for r in row['runs']]):,.0f}" for f in (min, max))
    out = []
    for other, goal in ((bare, 0.95), (nginx, 2.0)):
        rate, cpu = m(pc, "rate") / m(other, "rate"), m(other, "cpu_us") / m(pc, "cpu_us")
        out.append(f"- full TLS 1.3 handshakes with a client certificate, portcullis (device certificates) "
                   f"≥ {goal:g} × {other['label']}: {m(pc, 'rate'):,.0f} vs {m(other, 'rate'):,.0f} handshakes/s "
                   f"(rounds {spread(pc)} vs {spread(other)}) = {rate:.3f}× ({'met' if rate >= goal else 'not met'}); "
                   f"per proxy CPU-second (the inverse of CPU per handshake, {m(pc, 'cpu_us'):.0f} vs "
                   f"{m(other, 'cpu_us'):.0f} µs): {cpu:.3f}× ({'met' if cpu >= goal else 'not met'})")
    return out


def goals(cfg, targets, fixed, tls):
    sb, sn = summary(None, targets["bare"].runs), summary(None, targets["nginx"].runs)
    f10 = targets.get("pc-fast-10")
    f100k = targets.get("pc-fast-100000")
    out = ["## Goals (reported, not asserted)", ""]
    noise = (max(r["rps"] for r in targets["bare"].runs) - min(r["rps"] for r in targets["bare"].runs)) / sb["rps"]
    out.append(f"Round-to-round spread of bare Pingora req/s: {noise:.0%} of its median; a goal whose margin "
               "is smaller than that is not resolved by this run, whatever the verdict says.")
    cpu = [r["cpu_us"] for r in targets["bare"].runs]
    out.append(f"Round-to-round spread of bare Pingora CPU / req: {(max(cpu) - min(cpu)) / sb['cpu_us']:.0%} of "
               "its median.")
    out.append("")
    if f10 and f10.runs:
        s = summary(f10, f10.runs)
        out.append(f"- fast path ≥ 95 % of bare Pingora req/s: {s['rps'] / sb['rps']:.1%} "
                   f"({'met' if s['rps'] >= 0.95 * sb['rps'] else 'not met'})")
        per_cpu = sb["cpu_us"] / s["cpu_us"]
        out.append(f"- fast path ≥ 95 % of bare Pingora requests per CPU-second: {per_cpu:.1%} "
                   f"({s['cpu_us']:.1f} vs {sb['cpu_us']:.1f} µs CPU / req; {'met' if per_cpu >= 0.95 else 'not met'})")
        out.append(f"- fast path ≥ nginx req/s: {s['rps'] / sn['rps']:.1%} of nginx "
                   f"({'met' if s['rps'] >= sn['rps'] else 'not met'})")
    bare = targets["bare"]
    if f10 and f10.fixed and bare.fixed:
        added = summary(f10, f10.fixed)["p99"] - summary(bare, bare.fixed)["p99"]
        out.append(f"- added p99 ≤ 50 µs at {cfg.fixed_rate:,.0f} req/s: {added:+.0f} µs "
                   f"({'met' if added <= 50 else 'not met'})")
    if f10 and f100k and f10.runs and f100k.runs:
        r = summary(f100k, f100k.runs)["rps"] / summary(f10, f10.runs)["rps"]
        out.append(f"- 100 000 CIDRs within 2 % of 10: {r:.1%} of the 10-CIDR req/s "
                   f"({'met' if abs(1 - r) <= 0.02 else 'not met'}; run-to-run noise on this machine is "
                   f"shown by the spread below)")
    out += tls_goals(tls)
    out += ["", "Spread of req/s over rounds (min–max): " + "; ".join(
        f"{t.label} {min(r['rps'] for r in t.runs):,.0f}–{max(r['rps'] for r in t.runs):,.0f}"
        for t in targets.values() if t.runs)]
    return out


def svg_chart(cfg, targets, fixed, stamp):
    """Two bar panels: req/s (closed loop) and p99 at the fixed rate. Plain SVG, no dependencies."""
    rows = [t for t in targets.values() if t.runs]
    colors = {"nginx": "#4c9a2a", "haproxy": "#2a6f9a", "bare": "#888888", "portcullis": "#c0392b"}
    bar_h, gap, left, width = 18, 6, 290, 430
    h1 = len(rows) * (bar_h + gap)
    h2 = len(fixed) * (bar_h + gap)
    top1 = 88
    top2 = top1 + h1 + 70
    height = top2 + h2 + 50
    W = left + width + 210
    esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
           f'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{height}" fill="white"/>',
           f'<text x="10" y="22" font-size="15" font-weight="bold">portcullis load benchmark, '
           f'{stamp:%Y-%m-%d}{" (quick mode)" if cfg.quick else ""}</text>',
           f'<text x="10" y="40" fill="#555">{esc(machine())}; h2load HTTP/1.1+TLS, {cfg.conns} conns, '
           f'median of {cfg.rounds} rounds (whisker: min–max)</text>']

    def panel(items, top, title, value, label, scale_max, spread=None):
        out.append(f'<text x="10" y="{top - 12}" font-weight="bold">{esc(title)}</text>')
        for i, t in enumerate(items):
            y = top + i * (bar_h + gap)
            v = value(t)
            w = 0 if v != v or scale_max <= 0 else max(1, v / scale_max * width)
            out.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{esc(t.label)}</text>')
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colors[t.kind]}"/>')
            end = w
            if spread and scale_max > 0:  # min–max over the rounds, as a whisker
                lo, hi = (x / scale_max * width for x in spread(t))
                out.append(f'<line x1="{left + lo:.1f}" x2="{left + hi:.1f}" y1="{y + bar_h / 2}" '
                           f'y2="{y + bar_h / 2}" stroke="black" stroke-width="1.5"/>')
                end = max(w, hi)
            out.append(f'<text x="{left + end + 5:.1f}" y="{y + 13}">{esc(label(t, v))}</text>')

    rps = lambda t: summary(t, t.runs)["rps"]
    sb = rps(targets["bare"])
    panel(rows, top1, "Requests per second (closed loop; longer is better)", rps,
          lambda t, v: f"{v:,.0f}  ({v / sb:.0%} of bare)", max(max(r["rps"] for r in t.runs) for t in rows),
          spread=lambda t: (min(r["rps"] for r in t.runs), max(r["rps"] for r in t.runs)))
    if fixed:
        p99 = lambda t: summary(t, t.fixed)["p99"]
        panel(fixed, top2, f"p99 latency at a fixed {cfg.fixed_rate:,.0f} req/s (shorter is better)", p99,
              lambda t, v: fmt_us(v), max(max(r["p99"] for r in t.fixed) for t in fixed),
              spread=lambda t: (min(r["p99"] for r in t.fixed), max(r["p99"] for r in t.fixed)))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- marked sections

BEGIN, END = "<!-- instructions:begin -->", "<!-- instructions:end -->"


def marked_section(text):
    """The instruction-count section of a file (markers included), or None."""
    i, j = text.find(BEGIN), text.find(END)
    return text[i:j + len(END)] if 0 <= i < j else None


def replace_marked(text, section, append=True):
    """`text` with its marked section replaced by `section` (which carries the markers);
    appended when absent (if `append`), else None."""
    i, j = text.find(BEGIN), text.find(END)
    if 0 <= i < j:
        return text[:i] + section + text[j + len(END):]
    return text.rstrip("\n") + "\n\n" + section + "\n" if append else None


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke check, about a minute; figures not meaningful")
    ap.add_argument("--command", default="benches/harness/run.sh")
    ap.add_argument("--rounds", type=int, help="interleaved rounds of every measurement (full: 3, quick: 1)")
    ap.add_argument("--tls-seconds", type=int, help="seconds per `openssl s_time` measurement (full: 2, quick: 1)")
    cfg = ap.parse_args()
    if cfg.quick:
        rounds, cfg.duration, cfg.warmup, cfg.conns = 1, 1, 0.5, 16
        tls_seconds, cfg.tls_parallel, cfg.cidr_sizes = 1, 1, [10, 100000]
    else:
        rounds, cfg.duration, cfg.warmup, cfg.conns = 3, 8, 1, 32
        tls_seconds, cfg.tls_parallel, cfg.cidr_sizes = 2, 2, [10, 1000, 100000]
    cfg.rounds = max(1, cfg.rounds or rounds)
    cfg.tls_seconds = max(1, cfg.tls_seconds or tls_seconds)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(stop_all)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    w = Path(tempfile.mkdtemp(prefix="portcullis-bench-"))
    (w / "tmp").mkdir()
    progress(f"work dir {w}; {machine()}")

    certs = w / "certs"
    r = run([str(RELEASE / "portcullis"), "certs", "dev", "--dir", str(certs)])
    if r.returncode != 0:
        sys.exit(f"portcullis certs dev failed: {r.stdout}{r.stderr}")
    client = make_client_cert(w)
    origin = start_origin(w)
    progress(f"origin (nginx, 1 worker) on 127.0.0.1:{origin}")
    targets = {}
    for t in [start_bare(w, origin, certs), start_nginx(w, origin, certs), start_haproxy(w, origin, certs)]:
        targets[t.key] = t
        progress(f"{t.label} on 127.0.0.1:{t.port}")
    for n in cfg.cidr_sizes:
        started = time.monotonic()
        for t in start_portcullis(w, origin, certs, n):
            targets[t.key] = t
        progress(f"portcullis with {n} CIDRs on 127.0.0.1:{t.port} (ready and signed in in "
                 f"{time.monotonic() - started:.1f} s)")
    # The same four proxies requesting a client certificate from the harness's client CA
    # (optional for the client), measured for TLS handshakes only.
    ca = client / "ca.crt"
    mtls = {t.key: t for t in [start_bare(w, origin, certs, client_ca=ca, key="bare-mtls"),
                               start_portcullis(w, origin, certs, 10, device_ca=client),
                               start_nginx(w, origin, certs, client_ca=ca, key="nginx-mtls"),
                               start_haproxy(w, origin, certs, client_ca=ca, key="haproxy-mtls")]}
    for t in mtls.values():
        got = check_client_certs(t, client)
        progress(f"{t.label} on 127.0.0.1:{t.port}: with the client certificate {got['client']}, "
                 f"without {got[None]}, with another CA's {got['other']}")
    for t in list(targets.values()) + list(mtls.values()):
        t.pids = tree_pids(t.proc.pid)
    checked = [t for t in targets.values() if t.identity]
    for t in checked:
        check_identity(t, "before the rounds")
    progress("the origin received the signed-in user from every session target and `bypass` from every "
             f"bypass target ({len(checked)} checked)")

    # Closed loop, interleaved rounds.
    other, load_phase = {}, OtherLoad()
    order = list(targets.values())
    total = cfg.rounds * len(order)
    for rnd in range(cfg.rounds):
        for i, t in enumerate(order):
            res = h2load(t, w, cfg.duration, cfg.warmup, cfg.conns)
            t.runs.append(res)
            done = rnd * len(order) + i + 1
            eta = (time.monotonic() - T0) / done * (total - done)
            progress(f"round {rnd + 1}/{cfg.rounds} {t.label}: {res['rps']:,.0f} req/s, p50 {fmt_us(res['p50'])}, "
                     f"p99 {fmt_us(res['p99'])}, {res['cpu_us']:.1f} µs CPU/req, {res['status']}"
                     f"{'' if res['ok'] else '  <-- unexpected answers'}  (load phase ETA {eta:.0f} s)")

    # Fixed rate at about half of bare-Pingora saturation.
    cfg.fixed_rate = round(summary(None, targets["bare"].runs)["rps"] / 2, -2)
    fixed_keys = ["bare", "nginx", "haproxy", "pc-fast-10", "pc-bypass-10", f"pc-fast-{cfg.cidr_sizes[-1]}"]
    fixed = [targets[k] for k in fixed_keys if k in targets]
    for rnd in range(cfg.rounds):
        for t in fixed:
            res = h2load(t, w, cfg.duration, cfg.warmup, cfg.conns, rps=cfg.fixed_rate)
            t.fixed.append(res)
            progress(f"fixed {cfg.fixed_rate:,.0f} req/s, round {rnd + 1}/{cfg.rounds} {t.label}: "
                     f"{res['rps']:,.0f} req/s, p50 {fmt_us(res['p50'])}, p99 {fmt_us(res['p99'])}")

    for t in checked:  # a session that stopped working mid-run would show here
        check_identity(t, "after the rounds")
    progress(f"after the rounds, the same identity checks passed ({len(checked)} targets)")
    cfg.identity_checked = [t.label for t in checked]
    other["the load"] = load_phase.share()
    progress(f"processes outside the harness used {other['the load']:.0%} of the CPU during the load")

    # TLS handshakes, in interleaved rounds like the load.
    tls_phase = OtherLoad()
    tls = tls_plan(targets, mtls, client)
    for rnd in range(cfg.rounds):
        for row in tls:
            t = row["target"]
            c0 = cpu_seconds(t.pids)
            n, wall, resumed, client_cpu = s_time(t.port, cfg.tls_seconds, reuse=row["reuse"], cert=row["cert"],
                                                  parallel=cfg.tls_parallel)
            cpu = cpu_seconds(t.pids) - c0
            res = {"rate": n / wall, "cpu_us": cpu / max(1, n) * 1e6, "client_us": client_cpu / max(1, n) * 1e6,
                   "resumed": resumed / max(1, n)}
            row["runs"].append(res)
            progress(f"TLS round {rnd + 1}/{cfg.rounds} {row['label']}, {row['mode']}: {res['rate']:,.0f} "
                     f"handshakes/s, {res['cpu_us']:.0f} µs CPU each ({res['client_us']:.0f} µs in s_time), "
                     f"{res['resumed']:.0%} resumed")

    other["the TLS handshakes"] = tls_phase.share()
    progress(f"processes outside the harness used {other['the TLS handshakes']:.0%} of the CPU during the handshakes")
    elapsed = time.monotonic() - T0
    md = write_report(cfg, targets, fixed, tls, elapsed, stamp, other)
    svg = svg_chart(cfg, targets, fixed, stamp)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quick" if cfg.quick else "latest"
    # A smoke run keeps no dated copy: its figures mean nothing, and CI runs it often.
    dated = None if cfg.quick else f"{stamp:%Y-%m-%d-%H%M}"
    for base in filter(None, (name, dated)):
        # The instruction-count section (callgrind.py) lives in latest.md too: keep it.
        old = RESULTS / f"{base}.md"
        kept = marked_section(old.read_text()) if base == "latest" and old.exists() else None
        (RESULTS / f"{base}.md").write_text(md + ("\n" + kept + "\n" if kept else ""))
        (RESULTS / f"{base}.svg").write_text(svg)
    print(md)
    also = f" and {dated}.md/.svg" if dated else ""
    progress(f"wrote benches/results/{name}.md, {name}.svg{also} in {elapsed:.0f} s")
    bad = [t.label for t in list(targets.values()) if not all(r["ok"] for r in t.runs + t.fixed)]
    stop_all()
    shutil.rmtree(w, ignore_errors=True)
    if bad:
        sys.exit(f"unexpected answers from: {', '.join(bad)} (the harness is broken, not slow)")


if __name__ == "__main__":
    main()
