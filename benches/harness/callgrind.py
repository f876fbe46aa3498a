#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: a figure that repeats run
to run (within about 1 %), unlike req/s on a shared 2-core machine.

    python3 benches/harness/callgrind.py [--requests N] BIN [BIN ...]

For each portcullis binary given (say one built from main and one from a
branch), it measures two paths on one worker thread over HTTPS keep-alive
(one TLS 1.3 connection, HTTP/1.1, h2load as the client):

  bypass   an app whose `bypass = "internal_ip"` holds for the loopback client
  session  an app behind a login, with a valid session cookie (otp_skip holds)

Each is run twice under callgrind, with N/5 and N requests; the difference of
the two totals divided by the difference of the counts is the cost of one
request (with --repeat R, the median of R such pairs), start-up, the login and the TLS handshake cancelled out. Everything
listens on free 127.0.0.1 ports and is stopped at the end. Prints a Markdown
table. Needs valgrind, h2load and curl; the demo upstream is taken from the
binary's directory (portcullis-demo-upstream).
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HASH = "$argon2id$v=19$m=19456,t=2,p=1$ew2XREgJJ/KSvmyjUGd9lg$0L4bmN+TdB6ufRDxKH+vUdnmjA0dGQP95mMedCgwR78"
PASSWORD = "portcullis-demo"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def config(tmp, upstream, bypass):
    https, admin = free_port(), free_port()
    users = os.path.join(tmp, "users.toml")
    with open(users, "w") as f:
        f.write(f'[[user]]\nusername = "alice"\npassword = "{HASH}"\npolicy_group = "staff"\n')
    text = f"""[server]
https = "127.0.0.1:{https}"
tls_cert = "{tmp}/certs/server.crt"
tls_key = "{tmp}/certs/server.key"
state_dir = "{tmp}/state-{https}"
grace_period = "1s"
threads = 1

[admin]
listen = "127.0.0.1:{admin}"

[networks]
internal = ["127.0.0.0/8"]

[users]
file = "{users}"

[policy_group.staff]
allow = "always"
otp_skip = "internal_ip"

[[app]]
name = "bench"
hosts = ["127.0.0.1"]
upstream = "127.0.0.1:{upstream}"
policy_groups = ["staff"]
bypass = "{bypass}"
"""
    path = os.path.join(tmp, f"bench-{https}.toml")
    with open(path, "w") as f:
        f.write(text)
    return path, https


def login(tmp, https):
    jar = os.path.join(tmp, f"jar-{https}")
    body = json.dumps({"username": "alice", "password": PASSWORD})
    subprocess.run(
        ["curl", "-sk", "-c", jar, "-H", "content-type: application/json", "-d", body,
         f"https://127.0.0.1:{https}/.portcullis/api/login"],
        check=True, capture_output=True, timeout=120,
    )
    with open(jar) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 7 and "portcullis-session" in fields[5]:
                return f"{fields[5]}={fields[6]}"
    raise SystemExit("login gave no session cookie")


def measure(binary, tmp, upstream, mode, requests):
    """Total instructions of one callgrind run serving `requests` requests."""
    path, https = config(tmp, upstream, "internal_ip" if mode == "bypass" else "never")
    out = os.path.join(tmp, f"callgrind-{https}.out")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "run", "--config", path],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        wait_port(https)
        time.sleep(1)  # the TLS listener comes up a moment after the port
        headers = []
        if mode == "session":
            headers = ["-H", f"cookie: {login(tmp, https)}"]
        subprocess.run(
            ["h2load", "--h1", "-n", str(requests), "-c", "1", *headers, f"https://127.0.0.1:{https}/bench"],
            check=True, capture_output=True, timeout=600,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    with open(out) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2500)
    ap.add_argument("--repeat", type=int, default=1, help="runs per figure; the median is reported")
    ap.add_argument("binaries", nargs="+")
    args = ap.parse_args()
    low, high = args.requests // 5, args.requests
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        first = os.path.abspath(args.binaries[0])
        subprocess.run([first, "certs", "dev", "--dir", f"{tmp}/certs", "--host", "127.0.0.1"],
                       check=True, capture_output=True)
        upstream_port = free_port()
        demo = os.path.join(os.path.dirname(first), "portcullis-demo-upstream")
        up = subprocess.Popen([demo, f"127.0.0.1:{upstream_port}"], stdout=subprocess.DEVNULL)
        try:
            wait_port(upstream_port)
            for binary in args.binaries:
                for mode in ("bypass", "session"):
                    runs = []
                    for _ in range(args.repeat):
                        a = measure(binary, tmp, upstream_port, mode, low)
                        b = measure(binary, tmp, upstream_port, mode, high)
                        runs.append((b - a) / (high - low))
                    rows.append((binary, mode, statistics.median(runs)))
                    print(f"{binary} {mode}: {rows[-1][2]:,.0f} instructions/request", file=sys.stderr)
        finally:
            up.terminate()
            up.wait()
    print("| binary | path | instructions / request |")
    print("|---|---|---:|")
    for binary, mode, per in rows:
        print(f"| `{binary}` | {mode} | {per:,.0f} |")


if __name__ == "__main__":
    main()
