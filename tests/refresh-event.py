#!/usr/bin/env python3
"""Print a tests/events fixture with its connection times moved to now.

Connection items expire 24 h after requestContext.connectedAt, so replaying a fixture with its
recorded time would write an already-expired connection.
"""
import json
import sys
import time

event = json.load(open(sys.argv[1]))
context = event.get("requestContext", {})
now = int(time.time() * 1000)
for key in ("connectedAt", "requestTimeEpoch"):
    if key in context:
        context[key] = now
print(json.dumps(event))
