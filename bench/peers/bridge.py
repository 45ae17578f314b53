#!/usr/bin/python3
# bridge.py - the "straightforward Python bridge" peer of `make bench-peers`:
# MQTT (Debian python3-paho-mqtt, QoS 1) -> PostgreSQL (python3-psycopg2,
# batched psycopg2.extras.execute_values), written the way a competent user
# would write it in an afternoon, so chargewatchd is compared with what people
# run today. Not part of chargewatch itself. Usage:
#   bridge.py --host H --port P --dsn DSN [--client-id ID] [--batch N] [--flush-ms MS]
import argparse
import json
import queue
import signal
import sys
import time
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
import psycopg2
import psycopg2.extras

STATES = {"idle": 0, "charging": 1, "full": 2, "fault": 3}
INSERT = ("INSERT INTO readings (ts, station, socket, v, a, w, wh, t, t_amb, smoke, state) "
          "VALUES %s")


def to_row(topic, payload):
    # Topic cw/{station}/{socket}/telemetry, payload as docs/ARCHITECTURE.md section 7.
    parts = topic.split("/")
    r = json.loads(payload)
    return (datetime.fromtimestamp(r["ts"] / 1000.0, tz=timezone.utc),
            parts[1], int(parts[2]), r.get("v"), r.get("a"), r.get("w"), r.get("wh"),
            r.get("t"), r.get("t_amb"), bool(r.get("smoke", 0)),
            STATES.get(r.get("state")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--topic", default="cw/+/+/telemetry")
    ap.add_argument("--client-id", default="cw-bridge")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--flush-ms", type=int, default=200)
    args = ap.parse_args()

    rows = queue.Queue()
    stop = []
    bad = [0]

    def on_connect(client, userdata, flags, rc):
        client.subscribe(args.topic, qos=1)

    def on_subscribe(client, userdata, mid, granted):
        print("bridge: subscribed", args.topic, flush=True)

    def on_message(client, userdata, msg):
        try:
            rows.put(to_row(msg.topic, msg.payload))
        except (ValueError, KeyError, IndexError, TypeError):
            bad[0] += 1

    db = psycopg2.connect(args.dsn)
    cur = db.cursor()
    client = mqtt.Client(client_id=args.client_id, clean_session=True)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()  # network thread; this thread batches into the database

    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    stored = 0
    while True:
        batch = []
        deadline = time.monotonic() + args.flush_ms / 1000.0
        while len(batch) < args.batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(rows.get(timeout=left))
            except queue.Empty:
                break
        if batch:
            psycopg2.extras.execute_values(cur, INSERT, batch, page_size=args.batch)
            db.commit()
            stored += len(batch)
        elif stop:
            break
    client.loop_stop()
    client.disconnect()
    db.close()
    print(f"bridge: stored={stored} bad={bad[0]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
