"""A code for the executor contract tests; its first argument picks what it does.

job.py write TEXT OUTPUT         a line on each stream, ~64 MiB touched, TEXT written to OUTPUT
job.py fail                      a line on each stream, then exit 7
job.py hang [stubborn] [alone]   start a child `sleep`, write pids.json, sleep; "stubborn"
                                 ignores SIGTERM (and so does the child, which inherits it);
                                 "alone" starts no child
job.py once OUTPUT               write pids.json; the first execution of a job (no other
                                 run-* folder beside its own) hangs, a re-run writes OUTPUT
job.py gate RUNNING SLOTS RELEASE OUTPUT
                                 register in folder RUNNING, wait for file RELEASE, write the
                                 largest number of registered jobs it saw to OUTPUT
job.py concat-once DATE WHEN STATE INPUT... OUTPUT
                                 a mission code: concatenates its inputs, but when DATE ==
                                 WHEN it writes pids.json, and hangs if it is the first to
                                 make the file STATE
job.py flood SIZE                SIZE bytes on stdout and on stderr, interleaved in blocks
                                 of 4 KiB (see flood_block)
job.py leave [escape]            start a child `sleep` that keeps stdout and stderr open
                                 (with "escape": in a session of its own), write
                                 pids.json, say "left" and exit 0

pids.json (in the current folder, which is the run folder) holds this process's pid, its
parent's pid (the worker) and its child's pid.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time
import uuid


def write_pids(child=None):
    data = {"pid": os.getpid(), "ppid": os.getppid(), "child": child}
    with open("pids.json.tmp", "w") as fh:
        json.dump(data, fh)
    os.replace("pids.json.tmp", "pids.json")


def first_execution():
    return len(glob.glob(os.path.join(os.path.dirname(os.getcwd()), "run-*"))) == 1


def flood_block(stream, i):
    """Block ``i`` of the flood on stream 1 or 2: 4 KiB, numbered."""
    return f"{stream}:{i:07d} ".encode().ljust(4095, b".") + b"\n"


def hang():
    time.sleep(300)
    return 99


def main(argv):
    mode, *rest = argv
    if mode == "write":
        text, output = rest
        ballast = b"x" * (64 << 20)
        print(f"out: {text} env: {os.environ.get('DBPROC_TEST_VAR')}", flush=True)
        print(f"err: {text}", file=sys.stderr, flush=True)
        with open(output, "w") as fh:
            fh.write(text + "\n")
        return 0 if ballast else 1
    if mode == "fail":
        print("working", flush=True)
        print("boom: cannot calibrate", file=sys.stderr, flush=True)
        return 7
    if mode == "hang":
        if "stubborn" in rest:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = None if "alone" in rest else subprocess.Popen(["sleep", "300"]).pid
        write_pids(child)
        return hang()
    if mode == "once":
        (output,) = rest
        write_pids()
        if first_execution():
            return hang()
        with open(output, "w") as fh:
            fh.write("second execution\n")
        return 0
    if mode == "gate":
        running, slots, release, output = rest
        me = os.path.join(running, uuid.uuid4().hex)
        open(me, "w").close()
        seen = 0
        deadline = time.monotonic() + 120
        while True:
            seen = max(seen, len(os.listdir(running)))
            if os.path.exists(release) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        os.unlink(me)
        with open(output, "w") as fh:
            fh.write(f"{seen}\n")
        return 0
    if mode == "concat-once":
        date, when, state, *inputs, output = rest
        if date == when:
            write_pids()
            try:
                os.close(os.open(state, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                return hang()
        with open(output, "wb") as out:
            for name in inputs:
                with open(name, "rb") as fh:
                    out.write(fh.read())
        return 0
    if mode == "flood":
        (size,) = rest
        for i in range(int(size) // 4096):  # each write blocks while its pipe is full
            os.write(1, flood_block(1, i))
            os.write(2, flood_block(2, i))
        return 0
    if mode == "leave":
        child = subprocess.Popen(["sleep", "300"], start_new_session="escape" in rest).pid
        write_pids(child)
        print("left", flush=True)
        return 0
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
