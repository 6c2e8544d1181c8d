"""Inspector for the raw files testDB_<apid>_<nnn>.raw: file nnn holds day 2016-01-01 + nnn."""

import datetime
import os
import re


def inspect(path, apid="000"):
    name = os.path.basename(path)
    match = re.fullmatch(rf"testDB_{re.escape(apid)}_([0-9]{{3}})\.raw", name)
    if match is None:
        return None
    day = datetime.date(2016, 1, 1) + datetime.timedelta(days=int(match[1]))
    with open(path, "rb") as fh:
        first_line = fh.readline().decode("utf-8", "replace").strip()
    return {
        "date": day,
        "keywords": {"nnn": match[1]},
        "metadata": {"apid": apid, "first_line": first_line},
    }
