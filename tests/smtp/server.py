#!/usr/bin/python3
"""A real SMTP server for portcullis's mail tests (aiosmtpd, Debian's
python3-aiosmtpd): listens on 127.0.0.1, writes each delivered message to
DIR/N.eml (raw bytes as received after DATA), and prints "ready" once it
accepts connections.

  server.py --port P --dir DIR [--cert C --key K (--starttls | --tls)]
            [--user U --password W] [--refuse ADDRESS]

--starttls: STARTTLS offered and required before anything else.
--tls:      implicit TLS from the first byte (port 465 style).
--user/--password: AUTH PLAIN/LOGIN required, only these credentials pass.
--refuse:   RCPT TO this address gets "550 5.1.1 ... recipient refused".
"""

import argparse
import itertools
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Spool:
    def __init__(self, directory, refuse):
        self.directory = directory
        self.refuse = (refuse or "").lower()
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() == self.refuse:
            return "550 5.1.1 <%s>: recipient refused by the test server" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = next(self.counter)
        tmp = os.path.join(self.directory, "%04d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-From: %s\r\n" % envelope.mail_from.encode())
            f.write(b"X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos).encode())
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, "%04d.eml" % n))
        return "250 OK queued as %d" % n


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd then answers "535 5.7.8" itself (the
        # default, handled=True, would leave the client waiting for a reply).
        return AuthResult(success=ok, handled=False)

    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--refuse")
    a = p.parse_args()

    kwargs = {}
    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
    if a.starttls:
        kwargs.update(tls_context=context, require_starttls=True)
    if a.tls:
        kwargs.update(ssl_context=context)
    if a.user:
        kwargs.update(
            authenticator=authenticator(a.user, a.password),
            auth_required=True,
            # Implicit TLS is TLS too; aiosmtpd only counts STARTTLS as such.
            auth_require_tls=not a.tls,
        )
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    controller = Controller(
        Spool(a.dir, a.refuse), hostname="127.0.0.1", port=a.port, server_hostname="smtp.test", **kwargs
    )
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
