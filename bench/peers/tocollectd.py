#!/usr/bin/env python3
# tocollectd.py - rewrites a chargewatch capture (docs/CAPTURE.md) into the
# only form collectd's mqtt plugin accepts: topic PREFIX/HOST/PLUGIN-INST/TYPE
# and a "time:v1:v2:..." payload, one value list per reading, with the custom
# type cw_reading (types.db in this directory). Done offline so the collectd
# figures count collectd alone; a live deployment needs the same rewrite in a
# republisher between the stations and collectd (docs/PEERS.md).
#   tocollectd.py IN.cap OUT.cap
import json
import struct
import sys

MAGIC = b"CWCAP01\n"
STATES = {"idle": 0, "charging": 1, "full": 2, "fault": 3}
FIELDS = ("v", "a", "w", "wh", "t", "t_amb")


def num(x):
    # "U" is collectd's undefined value (stored as NaN, mapped to NULL in SQL).
    return "U" if x is None else repr(float(x))


def convert(r, station, socket):
    vals = [num(r.get(k)) for k in FIELDS]
    vals.append("1" if r.get("smoke") else "0")
    s = STATES.get(r.get("state"))
    vals.append("U" if s is None else str(s))
    topic = "collectd/%s/socket-%s/cw_reading" % (station, socket)
    return topic.encode(), ("%.3f:" % (r["ts"] / 1000.0) + ":".join(vals)).encode()


def main(src, dst):
    data = open(src, "rb").read()
    if data[:8] != MAGIC:
        sys.exit("tocollectd: %s: not a capture" % src)
    out = [MAGIC]
    off, n = 8, 0
    while off < len(data):
        if off + 14 > len(data):
            sys.exit("tocollectd: %s: truncated" % src)
        us, tl, pl = struct.unpack_from("<QHI", data, off)
        off += 14
        topic = data[off:off + tl].decode()
        payload = json.loads(data[off + tl:off + tl + pl])
        off += tl + pl
        parts = topic.split("/")
        # Station arrays (gen --batched) become one value list per element.
        items = payload if isinstance(payload, list) else [payload]
        for r in items:
            sock = r.get("socket", parts[2] if len(parts) > 3 else None)
            t, p = convert(r, parts[1], sock)
            out.append(struct.pack("<QHI", us, len(t), len(p)) + t + p)
            n += 1
    open(dst, "wb").write(b"".join(out))
    print("tocollectd: %s: %d value lists" % (dst, n))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tocollectd.py IN.cap OUT.cap")
    main(sys.argv[1], sys.argv[2])
