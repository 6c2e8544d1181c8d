"""An inspector reading the date from a first line 'DATE=YYYY-MM-DD' when there is one."""

import os
import re


def inspect(path, **args):
    name = os.path.basename(path)
    match = re.fullmatch(r"testDB_(\d{4})(\d{2})(\d{2})_v(\d+\.\d+\.\d+)\.cat", name)
    if match is None:
        return None
    date = f"{match[1]}-{match[2]}-{match[3]}"
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip()
    if first.startswith("DATE="):
        date = first[5:]
    return {"date": date, "version": match[4]}
