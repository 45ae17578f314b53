#!/usr/bin/env python3
# table.py - turns run.sh's per-run results (TSV) into the markdown table of
# `make bench-peers`: medians over runs for speed and CPU, the largest peak
# RSS, and every run's losses (loss is the point, so none is averaged away).
#   table.py RESULTS.tsv READINGS_SENT
import statistics
import sys

COLS = ("peer", "queue", "stored", "rate", "cpu", "hwm", "lost", "lost_after_stop",
        "dbcpu", "secs", "rc", "dropped", "pub_s", "mqcpu")


def med(rows, key):
    vals = [float(r[key]) for r in rows if r[key] not in ("-", "?", "")]
    return statistics.median(vals) if vals else None


def fmt(x, nd=1):
    return "-" if x is None else "%.*f" % (nd, x)


def main(path, sent):
    groups = {}
    for line in open(path):
        r = dict(zip(COLS, line.rstrip("\n").split("\t")))
        groups.setdefault((r["peer"], r["queue"]), []).append(r)
    base = {}
    for (peer, q), rows in groups.items():
        if peer == "chargewatchd":
            base[q] = (med(rows, "rate"), med(rows, "cpu"))
    print("| peer | broker queue | runs | rows/s | CPU us/row (peer) | DB server CPU us/row "
          "| broker CPU us/msg | peak RSS KiB | publish s | lost (sent - stored), each run "
          "| of which dropped by broker | stored only when the peer stopped "
          "| rows/s vs chargewatchd | CPU/row vs chargewatchd |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (peer, q), rows in groups.items():
        rate, cpu = med(rows, "rate"), med(rows, "cpu")
        brate, bcpu = base.get(q, (None, None))
        rr = fmt(rate / brate, 2) if rate and brate else "-"
        cr = fmt(cpu / bcpu, 1) if cpu and bcpu else "-"
        lost = ", ".join(r["lost"] for r in rows)
        dropped = ", ".join(r["dropped"] for r in rows)
        at_stop = ", ".join(str(int(r["lost"]) - int(r["lost_after_stop"])) for r in rows)
        hwm = max(int(r["hwm"]) for r in rows)
        print("| %s | %s | %d | %s | %s | %s | %s | %d | %s | %s of %d | %s | %s | %s | %s |" % (
            peer, q, len(rows), fmt(rate, 0), fmt(cpu), fmt(med(rows, "dbcpu")),
            fmt(med(rows, "mqcpu")), hwm, fmt(med(rows, "pub_s"), 2), lost, sent, dropped,
            at_stop, rr, cr))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: table.py RESULTS.tsv READINGS_SENT")
    main(sys.argv[1], int(sys.argv[2]))
