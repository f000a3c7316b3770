#!/usr/bin/env python3
"""A webhook receiver for moment's tests and benchmark, on 127.0.0.1.

    webhook_receiver.py --port-file FILE [--quiet]

Listens on a free port (written to FILE once it listens), records every
POST and answers according to its path:

    /ok/<name>                  200
    /fail/<n>/<name>            500 for the first n requests of each delivery
                                (X-Moment-Delivery), then 200
    /fail/always/<name>         500
    /status/<code>/<name>       <code> (a 302 carries a Location header)
    /hang/<name>                no answer for an hour (or until it stops)
    /refuse/<name>              closes the connection without an answer

Control (GET):

    /_requests[?since=N]        JSON list of the requests recorded since the
                                N-th: {"n", "time", "path", "headers", "body"}
                                (body as received, decoded as UTF-8)
    /_count                     {"count": N}
    /_reset                     forgets every request and failure count

Threaded, HTTP/1.1 with keep-alive, so that a hanging request holds up only
its own connection.
"""

import argparse
import http.server
import json
import os
import re
import socketserver
import threading
import time
import urllib.parse

LOCK = threading.Lock()
REQUESTS = []
FAILURES = {}  # (path, delivery) -> failures answered so far
STOPPING = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave at once: no 40 ms Nagle / delayed-ACK stall per answer
    disable_nagle_algorithm = True
    wbufsize = -1

    def log_message(self, format, *args):
        if not self.server.quiet:
            super().log_message(format, *args)

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def answer_json(self, value):
        self.answer(200, json.dumps(value).encode(), [("Content-Type", "application/json")])

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/_requests":
            since = int(query.get("since", ["0"])[0])
            with LOCK:
                self.answer_json(REQUESTS[since:])
        elif url.path == "/_count":
            with LOCK:
                self.answer_json({"count": len(REQUESTS)})
        elif url.path == "/_reset":
            with LOCK:
                REQUESTS.clear()
                FAILURES.clear()
            self.answer_json({"reset": True})
        else:
            self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        path = urllib.parse.urlsplit(self.path).path
        delivery = self.headers.get("X-Moment-Delivery")
        with LOCK:
            REQUESTS.append({
                "n": len(REQUESTS),
                "time": time.time(),
                "path": path,
                "headers": {name: value for name, value in self.headers.items()},
                "body": body.decode("utf-8", errors="replace"),
            })
        parts = path.strip("/").split("/")
        kind = parts[0] if parts else ""
        if kind == "ok":
            self.answer(200, b"{}")
        elif kind == "fail" and len(parts) >= 2:
            if parts[1] == "always":
                self.answer(500, b"failing on purpose")
                return
            key = (path, delivery)
            with LOCK:
                failed = FAILURES.get(key, 0)
                if failed < int(parts[1]):
                    FAILURES[key] = failed + 1
            if failed < int(parts[1]):
                self.answer(500, b"failing on purpose")
            else:
                self.answer(200, b"{}")
        elif kind == "status" and len(parts) >= 2 and re.fullmatch(r"[1-5][0-9][0-9]", parts[1]):
            status = int(parts[1])
            headers = [("Location", "/ok/redirected")] if 300 <= status < 400 else []
            self.answer(status, b"", headers)
        elif kind == "hang":
            STOPPING.wait(3600)
            self.close_connection = True
        elif kind == "refuse":
            self.close_connection = True
            self.connection.shutdown(2)
        else:
            self.answer(404)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.quiet = args.quiet
    temporary = args.port_file + ".tmp"
    with open(temporary, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(temporary, args.port_file)
    try:
        server.serve_forever()
    finally:
        STOPPING.set()


if __name__ == "__main__":
    main()
