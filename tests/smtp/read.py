#!/usr/bin/python3
"""Reads one .eml the way a mail client does (Python's email package, modern
policy: RFC 2047 words and transfer encodings decoded) and prints JSON."""

import email
import email.policy
import json
import sys

with open(sys.argv[1], "rb") as f:
    m = email.message_from_binary_file(f, policy=email.policy.default)
print(json.dumps({
    "from": str(m["From"]),
    "to": str(m["To"]),
    "subject": str(m["Subject"]),
    "date": str(m["Date"]),
    "message_id": str(m["Message-ID"]),
    "content_type": m.get_content_type(),
    "charset": m.get_content_charset(),
    "body": m.get_content(),
    "envelope_to": str(m["X-Envelope-To"]),
    "defects": [type(d).__name__ for d in m.defects],
}, ensure_ascii=False))
