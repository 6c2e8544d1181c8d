"""A command notifier for tests: appends its argv and the event JSON from stdin to LOG.

usage: record_event.py LOG [ARGS...]
"""

import json
import sys

event = json.loads(sys.stdin.read())
with open(sys.argv[1], "a", encoding="utf-8") as fh:
    fh.write(json.dumps({"argv": sys.argv[2:], "event": event}) + "\n")
