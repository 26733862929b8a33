#!/usr/bin/python3
"""faultproxy.py — a fault-injecting HTTP proxy for drbackup's integration tests.

Sits in front of a real S3 server (Swift s3api) and forwards requests unchanged (the Host
header too, so SigV4 signatures still verify upstream), except that a deterministic share
of requests meets a fault instead:

  slowdown  answer 503 with an S3 <Error><Code>SlowDown</Code> body
  reset     close the connection without answering
  cut       forward, but close the connection halfway through the response body
  stall     forward, but stop sending halfway through the body for --stall-seconds

Usage: faultproxy.py --listen PORT --upstream HOST:PORT --every N --faults slowdown,reset,cut
Every N-th request (1-based counter over all requests) gets the next fault from the list in
turn; --every 1 makes every request fail. Counts are logged to stderr.
"""
import argparse
import http.client
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
COUNT = {"requests": 0, "faults": 0}


def next_fault():
    with LOCK:
        COUNT["requests"] += 1
        n = COUNT["requests"]
        if n % ARGS.every != 0:
            return None
        COUNT["faults"] += 1
        faults = ARGS.faults.split(",")
        return faults[(n // ARGS.every - 1) % len(faults)]


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = next_fault()
        sys.stderr.write("%s %s %s\n" % (self.command, self.path, fault or "-"))
        if fault == "reset":
            self.close_connection = True
            self.connection.close()
            return
        if fault == "slowdown":
            msg = (b"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>SlowDown</Code>"
                   b"<Message>Please reduce your request rate.</Message></Error>")
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        up = http.client.HTTPConnection(ARGS.upstream, timeout=120)
        up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            up.putheader(k, v)
        up.endheaders(body if body else None)
        resp = up.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault in ("cut", "stall") and self.command == "GET" and len(data) > 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if fault == "stall":
                time.sleep(ARGS.stall_seconds)
            self.close_connection = True
            self.connection.close()
            return
        if self.command != "HEAD":
            self.wfile.write(data)
        up.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--every", type=int, default=3)
    p.add_argument("--faults", default="slowdown,reset,cut")
    p.add_argument("--stall-seconds", type=float, default=30)
    ARGS = p.parse_args()
    socketserver.TCPServer.allow_reuse_address = True
    ThreadingHTTPServer(("127.0.0.1", ARGS.listen), Proxy).serve_forever()


if __name__ == "__main__":
    main()
