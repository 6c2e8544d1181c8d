"""RUN step: append one line naming the date and the L2 inputs to LOGFILE.

usage: log_l2.py LOGFILE DATE INPUT...
"""

import os
import sys


def main(argv):
    logfile, date, *inputs = argv
    with open(logfile, "a", encoding="utf-8") as out:
        out.write(f"{date} {' '.join(os.path.basename(i) for i in inputs)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
