"""L0 -> L1: write the concatenation of the inputs, in the order given, to OUTPUT.

usage: l0_to_l1.py INPUT... OUTPUT
"""

import sys


def main(argv):
    *inputs, output = argv
    with open(output, "wb") as out:
        for name in inputs:
            with open(name, "rb") as fh:
                out.write(fh.read())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
