"""L1 -> L2: write the ROT13 of INPUT to OUTPUT.

usage: l1_to_l2.py INPUT OUTPUT
"""

import codecs
import sys


def main(argv):
    source, output = argv
    with open(source, encoding="utf-8") as fh:
        text = fh.read()
    with open(output, "w", encoding="utf-8") as out:
        out.write(codecs.encode(text, "rot13"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
