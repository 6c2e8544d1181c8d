"""A feed consumer as a user would write it: remembers the last seq it saw in its log.

usage: listener.py DB LOG

LOG holds one event per line (JSON). On start a partial last line (a kill in the middle
of a write) is dropped, the last seq read back, and ``dbproc events --follow --json
--since SEQ`` followed; every event is appended to LOG as it arrives.
"""

import json
import os
import subprocess
import sys


def last_seq(log):
    if not os.path.exists(log):
        return 0
    with open(log, "rb+") as fh:
        data = fh.read()
        keep = data[: data.rfind(b"\n") + 1]
        if len(keep) != len(data):
            fh.truncate(len(keep))
    lines = [line for line in keep.splitlines() if line.strip()]
    return json.loads(lines[-1])["seq"] if lines else 0


def main(db, log):
    since = last_seq(log)
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dbproc",
            "--db",
            db,
            "events",
            "--follow",
            "--json",
            "--since",
            str(since),
        ],
        stdout=subprocess.PIPE,
    )
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for line in follower.stdout:
        os.write(fd, line)
    return follower.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
