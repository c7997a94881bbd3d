#!/usr/bin/env python3
"""A test stand-in in front of a real registry (docker-registry on 127.0.0.1).

Modes (combinable):
  --token USER:PASS   a bearer-token registry: /v2/ needs a token for the
                      repository and action; /token issues them for basic
                      credentials, as Docker Hub's auth service does.
  --corrupt-blobs     blob downloads arrive with their last byte flipped.
  --close-blobs       blob downloads stop halfway and the connection closes.
  --flaky             the first try of each manifest gets 429 (Retry-After),
                      of each blob 503: clients must retry.

GET /stats answers how many tokens were issued (token reuse is tested);
GET /requests, how many manifest and blob GETs were forwarded ("M B").
Everything else is forwarded to --upstream unchanged, Host included, so the
registry's Location headers point back here.
"""

import argparse
import base64
import http.client
import http.server
import re
import threading
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.issued = {}  # token -> set of granted scopes
        self.count = 0
        self.seen = set()  # (method, path) already failed once (--flaky)
        self.manifest_gets = 0
        self.blob_gets = 0


def needed_scopes(method, path, query):
    m = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/", path)
    if not m:
        return []
    name = m.group(1)
    action = "pull" if method in ("GET", "HEAD") else "push"
    scopes = [f"repository:{name}:{action}"]
    source = query.get("from", [None])[0]
    if source:
        scopes.append(f"repository:{source}:pull")
    return scopes


def granted(scopes_given):
    out = set()
    for s in scopes_given:
        parts = s.split(":")
        if len(parts) == 3:
            for action in parts[2].split(","):
                out.add(f"{parts[0]}:{parts[1]}:{action}")
    return out


def make_handler(args, state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def token_endpoint(self, query):
            user, password = args.token.split(":", 1)
            want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if self.headers.get("Authorization") != want:
                self.reply(401, b'{"details":"bad credentials"}')
                return
            with state.lock:
                state.count += 1
                token = f"tok{state.count}"
                state.issued[token] = granted(query.get("scope", []))
            self.reply(200, ('{"token": "%s", "expires_in": 300}' % token).encode(),
                       [("Content-Type", "application/json")])

        def authorized(self, path, query):
            scopes = needed_scopes(self.command, path, query)
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            with state.lock:
                have = state.issued.get(token)
            if have is not None and all(s in have for s in scopes):
                return True
            realm = f"http://127.0.0.1:{args.port}/token"
            challenge = f'Bearer realm="{realm}",service="kiln-test"'
            if scopes:
                name = scopes[0].split(":")[1]
                actions = "pull" if self.command in ("GET", "HEAD") else "pull,push"
                challenge += f',scope="repository:{name}:{actions}"'
            self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                       [("WWW-Authenticate", challenge), ("Content-Type", "application/json")])
            return False

        def handle_any(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path == "/stats":
                self.reply(200, str(state.count).encode())
                return
            if url.path == "/requests":
                self.reply(200, f"{state.manifest_gets} {state.blob_gets}".encode())
                return
            body = self.body()
            if args.token:
                if url.path == "/token":
                    self.token_endpoint(query)
                    return
                if not self.authorized(url.path, query):
                    return
            if args.flaky and "/manifests/" in url.path or args.flaky and "/blobs/sha256:" in url.path:
                with state.lock:
                    first = (self.command, url.path) not in state.seen
                    state.seen.add((self.command, url.path))
                if first and "/manifests/" in url.path:
                    self.reply(429, b"slow down", [("Retry-After", "1")])
                    return
                if first:
                    self.reply(503, b"try again")
                    return
            if self.command == "GET":
                with state.lock:
                    if "/manifests/" in url.path:
                        state.manifest_gets += 1
                    elif "/blobs/sha256:" in url.path:
                        state.blob_gets += 1
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP and k.lower() != "authorization"}
            up = http.client.HTTPConnection(args.upstream, timeout=60)
            up.request(self.command, self.path, body=body or None, headers=headers)
            resp = up.getresponse()
            data = resp.read()
            up.close()
            is_blob = (self.command == "GET" and resp.status == 200
                       and re.match(r"^/v2/.+/blobs/sha256:", url.path))
            if is_blob and args.corrupt_blobs and data:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            if is_blob and args.close_blobs:
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--token")
    p.add_argument("--corrupt-blobs", action="store_true")
    p.add_argument("--close-blobs", action="store_true")
    p.add_argument("--flaky", action="store_true")
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, State()))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
