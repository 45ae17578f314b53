/* metrics.h - the daemon's counters, gauges and histograms (lib/hist.h):
 * relaxed atomics every thread adds to; http.c renders them (/metrics).
 * Plain data, no functions. */
#ifndef CW_METRICS_H
#define CW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "cw.h"
#include "hist.h"

enum { CW_LEASE_ACQUIRED, CW_LEASE_RELEASED, CW_LEASE_LOST, CW_LEASE__COUNT };

typedef struct cw_metrics {
  _Atomic uint64_t msgs_received;      /* MQTT messages into ingest */
  _Atomic uint64_t ingest_stalls;      /* waits on a full ingest ring */
  _Atomic uint64_t readings_accepted;  /* valid readings handed to the writer */
  _Atomic uint64_t rejects[CW_REJ__COUNT];
  _Atomic uint64_t rows_committed;     /* rows COMMITted to readings */
  _Atomic uint64_t batches_committed;
  _Atomic uint64_t batches_spooled;
  _Atomic uint64_t spool_bytes;
  _Atomic uint64_t spool_replayed;
  _Atomic uint64_t writer_stalls;      /* worker waits on a full reading ring */
  _Atomic uint64_t alert_events[CW_KIND__COUNT][3]; /* by kind, severity */
  _Atomic uint64_t alert_events_by[CW_KIND__COUNT][3][CW_EV_RECTIFIED + 1]; /* ... and event */
  _Atomic int64_t last_commit_ms;
  _Atomic uint64_t partitions_dropped; /* readings partitions dropped by retain_days */      /* wall clock of the last readings commit, 0 = none */
  _Atomic uint64_t alerts_published;   /* MQTT publishes acknowledged */
  _Atomic uint64_t alerts_stored;      /* alert_events rows committed */
  _Atomic uint64_t deadletter_written;
  _Atomic int mqtt_connected;
  _Atomic int alert_pub_connected; /* the alert publisher's MQTT client (mqtt_out) */
  _Atomic int db_connected;
  _Atomic uint64_t sockets_tracked;
  _Atomic uint64_t sensor_events;      /* temperature steps judged a sensor event (no alert) */
  _Atomic uint64_t sensor_suspect;     /* gauge: sockets whose probe is flagged */
  /* whether the daemon can see (lib/blind.h): receive times of the newest
   * accepted reading and of the newest live one (within ingest_lag_s of
   * its ts), kept by the workers to ~50 ms; the blind state sight.c derives */
  _Atomic int64_t recv_latest_ms;
  _Atomic int64_t recv_fresh_ms;
  _Atomic int ingest_blind;
  /* latencies: receive - reading ts (workers: each adds its own plain
   * histogram every ~50 ms, worker.c); reading ts -> COPY commit (writer:
   * once per batch); reading ts -> alert emitted (alert sink) */
  cw_hist_t ingest_lag, publish_to_store, publish_to_alert;
  /* alerts not closed in the database by kind, severity, state
   * (cw_alert_state_t), refreshed by the writer (db_alerts.c) */
  _Atomic uint64_t alerts_open[CW_KIND__COUNT][3][CW_ALERT_RECTIFIED + 1];
  _Atomic int64_t alerts_open_ms; /* wall clock of that refresh; 0 = never */
  /* [cluster] (shards.c): shard leases by event (which shards are held and
   * sighted is shards.c's own state, read through cw_http_cfg_t.shards) */
  _Atomic uint64_t lease_events[CW_LEASE__COUNT];
} cw_metrics_t;

#endif
