#!/usr/bin/env python3
"""Print a tests/events fixture with its connection times moved to now.

Connection items expire 24 h after requestContext.connectedAt, so replaying a fixture with its
recorded time would write an already-expired connection.
"""
import json
import sys
import time

try:
    with open(sys.argv[1]) as f:
        event = json.load(f)
except FileNotFoundError:
    sys.exit(f"make invoke: no fixture {sys.argv[1]}; the fixtures are in tests/events/")
except json.JSONDecodeError as e:
    sys.exit(f"make invoke: {sys.argv[1]} is not JSON: {e}")
context = event.get("requestContext", {})
now = int(time.time() * 1000)
for key in ("connectedAt", "requestTimeEpoch"):
    if key in context:
        context[key] = now
print(json.dumps(event))
