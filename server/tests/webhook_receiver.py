#!/usr/bin/env python3
"""Receiver for the notification tests (server/tests/api/notifications.rs).

Verifies each webhook's Standard Webhooks signature with the PyPI
`standardwebhooks` package -- an implementation independent of the server's --
against every secret listed in SECRETS_FILE (one a line, read per request),
answers chat messages (paths under /services/) the way Slack's incoming
webhooks do, and appends one JSON line per request to LOG_FILE. Webhooks to
paths under /slow/ are answered after 0.3 s; every entry says when the request
came and was answered (`started`, `ended`, seconds since the epoch) and how
many requests to its path were being answered when it came, itself included
(`in_flight`), so tests can tell sequential from concurrent delivery.

usage: webhook_receiver.py SECRETS_FILE LOG_FILE PORT_FILE
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRETS_FILE, LOG_FILE, PORT_FILE = sys.argv[1:4]
SLOW_S = 0.3
LOCK = threading.Lock()
IN_FLIGHT = {}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        entry = {"path": self.path, "id": self.headers.get("webhook-id"), "started": time.time()}
        with LOCK:
            IN_FLIGHT[self.path] = IN_FLIGHT.get(self.path, 0) + 1
            entry["in_flight"] = IN_FLIGHT[self.path]
        try:
            self.answer(body, entry)
        finally:
            with LOCK:
                IN_FLIGHT[self.path] -= 1

    def answer(self, body, entry):
        if self.path.startswith("/services/"):
            try:
                message = json.loads(body)
            except ValueError:
                return self.reply(400, "invalid_payload", entry)
            if not isinstance(message, dict) or not (message.get("text") or message.get("blocks")):
                return self.reply(400, "no_text", entry)
            entry["chat"] = message
            return self.reply(200, "ok", entry)
        with open(SECRETS_FILE) as f:
            secrets = [line.strip() for line in f if line.strip()]
        headers = dict(self.headers.items())
        verified = []
        for i, secret in enumerate(secrets):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(i)
            except WebhookVerificationError:
                pass
        entry["verified_by"] = verified
        entry["body"] = json.loads(body)
        if self.path.startswith("/slow/"):
            time.sleep(SLOW_S)
        if verified:
            self.reply(200, "ok", entry)
        else:
            self.reply(401, "signature does not verify", entry)

    def reply(self, status, text, entry):
        entry["status"] = status
        entry["ended"] = time.time()
        with LOCK, open(LOG_FILE, "a") as f:
            f.write(json.dumps(entry) + "\n")
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_port))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
