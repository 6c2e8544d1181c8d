"""A test code whose behaviour is chosen by its first arguments.

usage: behave.py MODE DATE WHEN INPUT... OUTPUT
MODE is one of: concat, fail, sleep, hold, no-output, wrong-content, spawn-sleep, spawn-wait.
hold creates the file $BEHAVE_HELD, then waits (at most 120 s) until $BEHAVE_RELEASE exists.
spawn-wait starts a child ``sleep $BEHAVE_SLEEP`` (default 3), waits for it, then concatenates.
The mode applies only when DATE == WHEN (or WHEN == "all"); otherwise the code concatenates.
"""

import os
import subprocess
import sys
import time


def concat(inputs, output):
    with open(output, "wb") as out:
        for name in inputs:
            with open(name, "rb") as fh:
                out.write(fh.read())


def main(argv):
    mode, date, when, *rest = argv
    *inputs, output = rest
    if when not in ("all", date):
        mode = "concat"
    if mode == "fail":
        sys.stdout.write("working on " + date + "\n")
        sys.stderr.write("boom: cannot calibrate " + date + "\n")
        return 7
    if mode == "sleep":
        time.sleep(float(os.environ.get("BEHAVE_SLEEP", "3")))
    if mode == "hold":
        open(os.environ["BEHAVE_HELD"], "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(os.environ["BEHAVE_RELEASE"]):
            if time.monotonic() > deadline:
                return 9
            time.sleep(0.01)
    if mode == "spawn-sleep":
        child = subprocess.Popen(["sleep", "300"])
        print(f"child-pid {child.pid}", flush=True)
        time.sleep(300)
    if mode == "spawn-wait":
        child = subprocess.Popen(["sleep", os.environ.get("BEHAVE_SLEEP", "3")])
        print(f"child-pid {child.pid}", flush=True)
        child.wait()
    if mode == "no-output":
        return 0
    if mode == "wrong-content":
        with open(output, "w") as out:
            out.write("DATE=1999-01-01\n")
        return 0
    concat(inputs, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
