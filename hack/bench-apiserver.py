#!/usr/bin/env python3
"""A stand-in Kubernetes API server for hack/bench-operator-idle.sh, on 127.0.0.1 only.

It answers exactly what an idle monero-operator asks for at startup: the lists of
the three custom resource kinds (cluster-wide) and of the StatefulSets, Services,
Secrets and PodDisruptionBudgets it owns (cluster-wide, with a label selector), all
empty, and then holds each `watch=true` request open, sending a BOOKMARK every
--bookmark-interval seconds until the request's timeoutSeconds. Anything else gets a
404 and is recorded as unexpected.

--object FILE (repeatable; a JSON object of a watched kind) puts that object in its
kind's list and answers a GET of its own path with it, so the operator reconciles it
(hack/observability-test.sh uses this for the operator's reconcile metrics). Writes
still get a 404, so such a reconcile ends in an error, counted as one.

GET /__bench/stats answers with what it has seen, as JSON. Standard library only.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

RESOURCE_VERSION = "1"

# Collection path -> (apiVersion, kind) of the items; these are what the operator watches.
WATCHED = {
    "/apis/utxo.com.br/v1alpha1/moneronodesets": ("utxo.com.br/v1alpha1", "MoneroNodeSet"),
    "/apis/utxo.com.br/v1alpha1/moneronetworks": ("utxo.com.br/v1alpha1", "MoneroNetwork"),
    "/apis/utxo.com.br/v1alpha1/monerominingnodesets": (
        "utxo.com.br/v1alpha1",
        "MoneroMiningNodeSet",
    ),
    "/apis/apps/v1/statefulsets": ("apps/v1", "StatefulSet"),
    "/api/v1/services": ("v1", "Service"),
    "/api/v1/secrets": ("v1", "Secret"),
    "/apis/policy/v1/poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget"),
    # The operator's caches: its pods (read for status) are watched too.
    "/api/v1/pods": ("v1", "Pod"),
}
CUSTOM = {p for p, (_, kind) in WATCHED.items() if kind.startswith("Monero")}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lists = {}  # path -> count
        self.watches = {}  # path -> count of watch requests
        self.open_watches = 0
        self.bookmarks_sent = 0
        self.selectors = {}  # path -> sorted set of labelSelector values seen
        self.unexpected = []  # "METHOD path?query"

    def snapshot(self):
        with self.lock:
            return {
                "lists": dict(self.lists),
                "watches": dict(self.watches),
                "lists_total": sum(self.lists.values()),
                "watches_total": sum(self.watches.values()),
                "open_watches": self.open_watches,
                "bookmarks_sent": self.bookmarks_sent,
                "selectors": {k: sorted(v) for k, v in self.selectors.items()},
                "unexpected": list(self.unexpected),
            }


STATS = Stats()
ARGS = None
# Collection path -> objects served in its list (from --object).
OBJECTS = {}
# Path of one object -> the object.
OBJECT_PATHS = {}


def load_objects(files):
    plural = {kind: path for path, (_, kind) in WATCHED.items()}
    for name in files:
        with open(name) as f:
            obj = json.load(f)
        kind = obj.get("kind")
        if kind not in plural:
            raise SystemExit("%s: kind %r is not one the stand-in serves" % (name, kind))
        meta = obj.setdefault("metadata", {})
        meta.setdefault("resourceVersion", RESOURCE_VERSION)
        meta.setdefault("uid", "00000000-0000-4000-8000-%012d" % (len(OBJECT_PATHS) + 1))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        collection = plural[kind]
        OBJECTS.setdefault(collection, []).append(obj)
        # /apis/GROUP/VERSION/PLURAL -> /apis/GROUP/VERSION/namespaces/NS/PLURAL/NAME
        head, resource = collection.rsplit("/", 1)
        ns = meta.get("namespace")
        if ns:
            own = "%s/namespaces/%s/%s/%s" % (head, ns, resource, meta["name"])
        else:
            own = "%s/%s" % (collection, meta["name"])
        OBJECT_PATHS[own] = obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bench-apiserver"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if ARGS.verbose:
            sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), format % args))

    def send_json(self, code, value):
        body = json.dumps(value).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def not_found(self):
        with STATS.lock:
            STATS.unexpected.append("%s %s" % (self.command, self.path))
        self.send_json(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "the bench stand-in does not serve %s" % self.path,
                "reason": "NotFound",
                "code": 404,
            },
        )

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/__bench/stats":
            return self.send_json(200, STATS.snapshot())
        if url.path == "/version":
            # The operator asks once, to know it can reach the API before /readyz says so.
            return self.send_json(
                200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}
            )
        if url.path in OBJECT_PATHS:
            return self.send_json(200, OBJECT_PATHS[url.path])
        if url.path not in WATCHED:
            return self.not_found()
        api_version, kind = WATCHED[url.path]
        selector = query.get("labelSelector", [""])[0]
        with STATS.lock:
            STATS.selectors.setdefault(url.path, set()).add(selector)
        if query.get("watch", ["false"])[0] in ("true", "1"):
            return self.watch(url.path, api_version, kind, query)
        with STATS.lock:
            STATS.lists[url.path] = STATS.lists.get(url.path, 0) + 1
        self.send_json(
            200,
            {
                "apiVersion": api_version,
                "kind": kind + "List",
                "metadata": {"resourceVersion": RESOURCE_VERSION},
                "items": OBJECTS.get(url.path, []),
            },
        )

    def do_POST(self):
        self.drain()
        self.not_found()

    do_PUT = do_PATCH = do_DELETE = do_POST

    def drain(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, path, api_version, kind, query):
        timeout = int(query.get("timeoutSeconds", ["290"])[0])
        with STATS.lock:
            STATS.watches[path] = STATS.watches.get(path, 0) + 1
            STATS.open_watches += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            bookmark = (
                json.dumps(
                    {
                        "type": "BOOKMARK",
                        "object": {
                            "apiVersion": api_version,
                            "kind": kind,
                            "metadata": {"resourceVersion": RESOURCE_VERSION},
                        },
                    }
                ).encode()
                + b"\n"
            )
            deadline = time.monotonic() + timeout
            interval = ARGS.bookmark_interval
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, interval) if interval > 0 else min(left, 1.0))
                if interval > 0 and time.monotonic() < deadline:
                    self.chunk(bookmark)
                    with STATS.lock:
                        STATS.bookmarks_sent += 1
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with STATS.lock:
                STATS.open_watches -= 1


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--bookmark-interval", type=float, default=5.0, help="seconds; 0 sends none")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    p.add_argument(
        "--object", action="append", default=[], metavar="FILE", help="serve this JSON object (repeatable)"
    )
    ARGS = p.parse_args()
    load_objects(ARGS.object)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(ARGS.port_file + ".tmp", ARGS.port_file)
    sys.stderr.write("bench-apiserver listening on 127.0.0.1:%d\n" % port)
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
