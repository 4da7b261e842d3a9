#!/usr/bin/env python3
"""DynamoDB as AWS documents it, in front of DynamoDB Local (which is kinder): a proxy that
forwards every request and, seeded and off by default, adds what the real service does.

- `--gsi-lag-ms L`: each write (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
  TransactWriteItems) reaches the table's global secondary indexes only after a random delay
  of up to L ms (at least `--gsi-lag-min-ms`; equal, a fixed delay). Until then a Query on an index does not show the item as written: a new or
  moved item is missing from its new partition, and its old image (read just before the write)
  is still listed in the old one, deleted items included. DynamoDB Developer Guide, "DynamoDB
  read consistency": all reads from GSIs are eventually consistent; AWS re:Post Knowledge
  Center "dynamodb-missing-table-items-gsi": writes propagate to a GSI within 1 second.
- `--throttle-rate R`: a request fails with 400 `ThrottlingException` at rate R (the SDK
  retries it).
- `--error-rate R`: a request fails with 500 `InternalServerError` at rate R.
- `--conflict-rate R`: a TransactWriteItems is cancelled with `TransactionConflict` at rate R.

Responses whose body changes get a new `x-amz-crc32`. Prints `listening on HOST:PORT` once
ready; then one JSON line per injected fault on stderr with `--verbose`.

Usage: python3 tests/faults/dynamodb.py --upstream http://127.0.0.1:8000 [--listen 127.0.0.1:0]
       [--seed N] [--gsi-lag-ms L] [--gsi-lag-min-ms M] [--throttle-rate R] [--error-rate R] [--conflict-rate R]
"""
import argparse
import http.client
import http.server
import json
import random
import re
import sys
import threading
import time
import urllib.parse
import zlib

TARGET = "X-Amz-Target"
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


class Faults:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.key_schemas = {}
        # (table, key json) -> (visible_at, old image or None, new image or None)
        self.pending = {}
        self.counts = {"lagged": 0, "throttled": 0, "errors": 0, "conflicts": 0}

    def chance(self, rate):
        with self.lock:
            return rate > 0 and self.rng.random() < rate

    def lag(self):
        with self.lock:
            low = min(self.args.gsi_lag_min_ms, self.args.gsi_lag_ms)
            return self.rng.uniform(low, self.args.gsi_lag_ms) / 1000.0

    def tell(self, kind, **fields):
        with self.lock:
            self.counts[kind] += 1
        if self.args.verbose:
            print(json.dumps({"fault": kind, **fields}), file=sys.stderr, flush=True)


class Upstream:
    """One keep-alive connection to DynamoDB Local per proxy thread."""

    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.local = threading.local()

    def call(self, target, body, headers):
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                conn.request("POST", "/", body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                self.local.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def json(self, operation, payload):
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            TARGET: f"DynamoDB_20120810.{operation}",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        }
        status, _, data = self.call(operation, body, headers)
        return status, json.loads(data or b"{}")


def key_of(schema, item):
    return json.dumps({k: item.get(k) for k in schema}, sort_keys=True)


def condition_partition(request):
    """(attribute, value) of a Query's `name = :value` key condition, or None."""
    expression = request.get("KeyConditionExpression", "")
    m = re.match(r"\s*(#?[\w]+)\s*=\s*(:[\w]+)", expression)
    if not m:
        return None
    name, placeholder = m.groups()
    name = request.get("ExpressionAttributeNames", {}).get(name, name)
    value = request.get("ExpressionAttributeValues", {}).get(placeholder)
    return name, value


def live(request, item):
    """Whether `item` passes the `expires_at > :now` filter the readers use, when given."""
    now = request.get("ExpressionAttributeValues", {}).get(":now")
    if not now or "expires_at" not in item:
        return True
    return int(item["expires_at"]["N"]) > int(now["N"])


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    faults: Faults
    upstream: Upstream

    def log_message(self, *_):
        pass

    def reply(self, status, headers, body):
        self.send_response(status)
        sent = set()
        for name, value in headers:
            lower = name.lower()
            if lower in ("content-length", "transfer-encoding", "connection", "x-amz-crc32", "date", "server"):
                continue
            self.send_header(name, value)
            sent.add(lower)
        if "content-type" not in sent:
            self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, kind, message, extra=None):
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{kind}", "message": message, **(extra or {})}).encode()
        self.reply(status, [("Content-Type", "application/x-amz-json-1.0")], body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        operation = (self.headers.get(TARGET) or "").rsplit(".", 1)[-1]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "accept-encoding", "connection")}
        f, args = self.faults, self.faults.args
        if f.chance(args.error_rate):
            f.tell("errors", operation=operation)
            return self.error(500, "InternalServerError", "injected: internal server error")
        if f.chance(args.throttle_rate):
            f.tell("throttled", operation=operation)
            return self.error(400, "ThrottlingException", "injected: rate of requests exceeds the allowed throughput")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        if operation == "TransactWriteItems" and f.chance(args.conflict_rate):
            f.tell("conflicts", operation=operation)
            reasons = [{"Code": "TransactionConflict", "Message": "injected"} for _ in request.get("TransactItems", [])]
            return self.error(400, "TransactionCanceledException", "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]", {"CancellationReasons": reasons})
        writes = self.writes(operation, request) if args.gsi_lag_ms > 0 else []
        olds = [(table, key, self.read(table, key)) for table, key in writes]
        status, response_headers, data = self.upstream.call(operation, body, headers)
        if status == 200 and olds:
            for table, key, old in olds:
                self.lagged(table, key, old)
        if status == 200 and operation == "Query" and request.get("IndexName") and args.gsi_lag_ms > 0:
            data = self.lag_query(request, data)
        self.reply(status, response_headers, data)

    # --- GSI lag -------------------------------------------------------------------------

    def schema(self, table):
        f = self.faults
        if table not in f.key_schemas:
            status, described = self.upstream.json("DescribeTable", {"TableName": table})
            if status != 200:
                return None
            f.key_schemas[table] = [k["AttributeName"] for k in described["Table"]["KeySchema"]]
        return f.key_schemas[table]

    def writes(self, operation, request):
        """The (table, key) pairs a write request touches."""
        out = []
        def add(table, key_or_item):
            schema = self.schema(table)
            if schema:
                out.append((table, {k: key_or_item[k] for k in schema if k in key_or_item}))
        if operation in WRITES:
            add(request.get("TableName"), request.get("Key") or request.get("Item") or {})
        elif operation == "BatchWriteItem":
            for table, entries in request.get("RequestItems", {}).items():
                for e in entries:
                    put, delete = e.get("PutRequest"), e.get("DeleteRequest")
                    add(table, (put or {}).get("Item") or (delete or {}).get("Key") or {})
        elif operation == "TransactWriteItems":
            for t in request.get("TransactItems", []):
                for kind in ("Put", "Update", "Delete"):
                    if kind in t:
                        add(t[kind]["TableName"], t[kind].get("Key") or t[kind].get("Item") or {})
        return out

    def read(self, table, key):
        status, got = self.upstream.json("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
        return got.get("Item") if status == 200 else None

    def lagged(self, table, key, old):
        f = self.faults
        delay = f.lag()
        with f.lock:
            f.pending[(table, json.dumps(key, sort_keys=True))] = (time.monotonic() + delay, old, key)

    def lag_query(self, request, data):
        f = self.faults
        table = request.get("TableName")
        partition = condition_partition(request)
        schema = self.schema(table)
        if not partition or not schema:
            return data
        name, value = partition
        now = time.monotonic()
        with f.lock:
            pending = {k: v for k, v in f.pending.items() if k[0] == table and v[0] > now}
            for k in [k for k, v in f.pending.items() if v[0] <= now]:
                del f.pending[k]
        if not pending:
            return data
        result = json.loads(data)
        items = result.get("Items", [])
        kept = []
        for item in items:
            entry = pending.get((table, key_of(schema, item)))
            if entry is None:
                kept.append(item)
                continue
            old = entry[1]
            # The index still holds the old image: the item is listed only if it was here.
            if old is not None and old.get(name) == value:
                kept.append(old)
            else:
                f.tell("lagged", hidden=key_of(schema, item))
        listed = {key_of(schema, i) for i in kept}
        if "ExclusiveStartKey" not in request:
            for (t, k), (_, old, _) in pending.items():
                if old is not None and old.get(name) == value and k not in listed and live(request, old):
                    kept.append(old)
                    f.tell("lagged", stale=k)
        result["Items"] = kept
        result["Count"] = len(kept)
        return json.dumps(result).encode()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--gsi-lag-ms", type=float, default=0)
    p.add_argument("--gsi-lag-min-ms", type=float, default=0)
    p.add_argument("--throttle-rate", type=float, default=0)
    p.add_argument("--error-rate", type=float, default=0)
    p.add_argument("--conflict-rate", type=float, default=0)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    Proxy.faults = Faults(args)
    Proxy.upstream = Upstream(args.upstream)
    server = http.server.ThreadingHTTPServer((host, int(port)), Proxy)
    server.daemon_threads = True
    print(f"listening on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
