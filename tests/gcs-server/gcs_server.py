#!/usr/bin/python3
"""A small stand-in for the Google Cloud Storage JSON API and its OAuth2 token endpoint.

Not an emulator: just enough of GCS for drbackup's tests (see README.md). Objects live in
DIR/<bucket>/<percent-encoded name>. Every storage call needs "Authorization: Bearer T"
with a token issued by POST /token (a JWT signed RS256 by the test service account) or
given with --static-token.
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ALIGN = 256 * 1024
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",
          "https://www.googleapis.com/auth/devstorage.full_control")


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class State:
    def __init__(self, args):
        self.args = args
        with open(args.public_key, "rb") as f:
            self.public_key = serialization.load_pem_public_key(f.read())
        self.tokens = {t: float("inf") for t in args.static_token}
        self.sessions = {}
        self.lock = threading.Lock()
        self.counters = {"requests": 0, "reads": 0, "chunks": 0}
        self.bucket_dir = os.path.join(args.dir, args.bucket)
        os.makedirs(self.bucket_dir, exist_ok=True)
        os.makedirs(os.path.join(args.dir, ".sessions"), exist_ok=True)

    def bump(self, name):
        with self.lock:
            self.counters[name] += 1
            return self.counters[name]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    # ---- plumbing
    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("gcs-server: " + (fmt % args) + "\n")

    def reply(self, status, body=b"", headers=None, ctype="application/json", cut=False):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:  # promise everything, send half, hang up
            body, self.close_connection = body[:len(body) // 2], True
        self.wfile.write(body)

    def error(self, status, message):
        self.reply(status, {"error": {"code": status, "message": message}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        u = urllib.parse.urlsplit(self.path)
        return u.path, {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}

    def obj_path(self, name):
        return os.path.join(self.server.state.bucket_dir, urllib.parse.quote(name, safe=""))

    def metadata(self, name, with_md5=True):
        st = os.stat(self.obj_path(name))
        meta = {"kind": "storage#object", "bucket": self.server.state.args.bucket, "name": name,
                "size": str(st.st_size),
                "updated": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
                .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        if with_md5:
            with open(self.obj_path(name), "rb") as f:
                meta["md5Hash"] = base64.b64encode(hashlib.md5(f.read()).digest()).decode()
        return meta

    def store(self, name, src_path):
        os.replace(src_path, self.obj_path(name))
        self.reply(200, self.metadata(name))

    # ---- auth
    def token_endpoint(self):
        st, args = self.server.state, self.server.state.args
        form = urllib.parse.parse_qs(self.body().decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.reply(400, {"error": "unsupported_grant_type"})
        try:
            h64, c64, s64 = form["assertion"][0].split(".")
            header, claims = json.loads(b64url_decode(h64)), json.loads(b64url_decode(c64))
            if header.get("alg") != "RS256" or header.get("typ") != "JWT":
                raise ValueError("bad JWT header")
            st.public_key.verify(b64url_decode(s64), (h64 + "." + c64).encode(),
                                 padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        except (KeyError, ValueError) as e:
            return self.reply(400, {"error": "invalid_request", "error_description": "bad assertion: %s" % e})
        now = time.time()
        aud = "http://%s:%d/token" % self.server.server_address[:2]
        problem = ("iss" if args.client_email and claims.get("iss") != args.client_email else
                   "aud" if claims.get("aud") != aud else
                   "scope" if claims.get("scope") not in SCOPES else
                   "exp" if not (now - 60 <= claims.get("exp", 0) <= claims.get("iat", 0) + 3600) else
                   "iat" if claims.get("iat", 0) > now + 60 else None)
        if problem:
            return self.reply(400, {"error": "invalid_grant", "error_description": "bad JWT claim: " + problem})
        token = "ya29.test-" + secrets.token_urlsafe(24)
        with st.lock:
            st.tokens[token] = now + args.token_lifetime
        self.reply(200, {"access_token": token, "expires_in": args.token_lifetime, "token_type": "Bearer"})

    def authorised(self):
        st = self.server.state
        auth = self.headers.get("Authorization", "")
        n = st.bump("requests")
        if n == st.args.revoke_at:
            with st.lock:  # revoke every issued (non-static) token once
                st.tokens = {t: e for t, e in st.tokens.items() if e == float("inf")}
        with st.lock:
            ok = auth.startswith("Bearer ") and st.tokens.get(auth[7:], 0) > time.time()
        if not ok:
            self.body()
            self.error(401, "Invalid Credentials")
            return False
        if n <= st.args.fail_first:
            self.body()
            self.error(503, "injected failure %d" % n)
            return False
        return True

    # ---- dispatch
    def handle_any(self):
        path, q = self.route()
        if path == "/token" and self.command == "POST":
            return self.token_endpoint()
        if not self.authorised():
            return
        bucket = self.server.state.args.bucket
        for p in ("/storage/v1/b/", "/upload/storage/v1/b/"):
            if path.startswith(p):
                rest = path[len(p):].split("/", 2)
                break
        else:
            return self.error(404, "Not Found")
        if rest[0] != bucket:
            self.body()
            return self.error(404, "The specified bucket does not exist.")
        if path.startswith("/upload/"):
            return self.upload(q)
        if len(rest) == 2 and rest[1] == "o" and self.command == "GET":
            return self.list(q)
        if len(rest) == 3 and rest[1] == "o":
            return self.object(urllib.parse.unquote(rest[2]), q)
        self.error(400, "unsupported request")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    # ---- objects
    def object(self, name, q):
        if not os.path.exists(self.obj_path(name)):
            return self.error(404, "No such object: %s/%s" % (self.server.state.args.bucket, name))
        if self.command == "DELETE":
            os.unlink(self.obj_path(name))
            return self.reply(204)
        if q.get("alt") != "media":
            return self.reply(200, self.metadata(name))
        with open(self.obj_path(name), "rb") as f:
            data = f.read()
        size, start, end, status, extra = len(data), 0, len(data) - 1, 200, {}
        rng = self.headers.get("Range")
        if rng:
            a, b = rng.split("=", 1)[1].split("-")
            start, end = (size - int(b), size - 1) if a == "" else (int(a), min(int(b), size - 1) if b else size - 1)
            if start >= size or start > end:
                return self.error(416, "Requested range not satisfiable")
            status, extra = 206, {"Content-Range": "bytes %d-%d/%d" % (start, end, size)}
        part = data[start:end + 1]
        cut = self.server.state.bump("reads") <= self.server.state.args.cut_reads and len(part) > 1
        self.reply(status, part, extra, "application/octet-stream", cut)

    def list(self, q):
        st = self.server.state
        prefix, after = q.get("prefix", ""), q.get("pageToken")
        after = b64url_decode(after).decode() if after else None
        names = sorted(n for n in (urllib.parse.unquote(f) for f in os.listdir(st.bucket_dir))
                       if n.startswith(prefix) and (after is None or n > after))
        limit = min(int(q.get("maxResults") or 1000), st.args.page_size)
        page = names[:limit]
        out = {"kind": "storage#objects", "items": [self.metadata(n, False) for n in page]}
        if len(names) > limit:
            out["nextPageToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode().rstrip("=")
        self.reply(200, out)

    # ---- uploads
    def upload(self, q):
        st = self.server.state
        kind, sid = q.get("uploadType"), q.get("upload_id")
        if sid is not None:
            return self.session(sid)
        if self.command != "POST" or not q.get("name"):
            return self.error(400, "upload needs POST and a name")
        tmp = os.path.join(st.args.dir, ".sessions", secrets.token_hex(8))
        if kind == "media":
            with open(tmp, "wb") as f:
                f.write(self.body())
            return self.store(q["name"], tmp)
        if kind == "resumable":
            self.body()
            open(tmp, "wb").close()
            sid = os.path.basename(tmp)
            with st.lock:
                st.sessions[sid] = {"name": q["name"], "file": tmp, "persisted": 0}
            host = "http://%s:%d" % self.server.server_address[:2]
            return self.reply(200, {}, {"Location": "%s/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=%s"
                                        % (host, st.args.bucket, sid)})
        self.error(400, "unsupported uploadType")

    def session(self, sid):
        st = self.server.state
        data = self.body()
        s = st.sessions.get(sid)
        if s is None:
            return self.error(404, "No such upload session")
        if self.command == "DELETE":
            with st.lock:
                st.sessions.pop(sid, None)
            os.unlink(s["file"])
            return self.reply(499)
        if self.command != "PUT":
            return self.error(400, "session needs PUT")
        try:
            rng, total = self.headers["Content-Range"].split(" ", 1)[1].split("/")
            total = None if total == "*" else int(total)
            first, last = (None, None) if rng == "*" else map(int, rng.split("-"))
        except (KeyError, ValueError, IndexError):
            return self.error(400, "bad Content-Range")
        if first is not None:
            if last - first + 1 != len(data) or first > s["persisted"]:
                return self.error(400, "Content-Range %s does not fit %d bytes at %d"
                                  % (rng, len(data), s["persisted"]))
            if total is None and (last + 1) % ALIGN:
                return self.error(400, "non-final chunk must end on a 256 KiB boundary")
            data = data[s["persisted"] - first:]
            if st.bump("chunks") <= st.args.fail_chunks:  # keep part, then fail
                data = data[:len(data) // 2 // ALIGN * ALIGN]
                self.append(s, data)
                return self.error(503, "injected chunk failure")
            self.append(s, data)
        if total is not None and s["persisted"] == total:
            with st.lock:
                st.sessions.pop(sid, None)
            return self.store(s["name"], s["file"])
        if total is not None and s["persisted"] > total:
            return self.error(400, "more bytes than the declared total")
        self.reply(308, b"", {"Range": "bytes=0-%d" % (s["persisted"] - 1)} if s["persisted"] else {})

    def append(self, s, data):
        with open(s["file"], "ab") as f:
            f.write(data)
        s["persisted"] += len(data)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--dir", "--bucket", "--public-key"):  # storage dir, the one bucket, SA's PEM public key
        p.add_argument(name, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-email", help="required JWT iss (default: any)")
    p.add_argument("--static-token", action="append", default=[], help="accept this bearer token")
    # fault knobs and limits, see README.md
    for name, default in (("--token-lifetime", 3600), ("--page-size", 1000), ("--fail-first", 0),
                          ("--fail-chunks", 0), ("--cut-reads", 0), ("--revoke-at", 0)):
        p.add_argument(name, type=int, default=default)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print("gcs-server: listening on 127.0.0.1:%d" % args.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
