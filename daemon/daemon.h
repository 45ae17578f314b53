/* daemon.h - the chargewatchd process: configuration, shared counters and the
 * interfaces between its threads. Data flow (DESIGN.md section 2):
 *   paho receive thread --ingest ring--> worker(s) --reading ring--> writer
 *                                         worker(s) --alert ring---> main loop
 *   main loop --alert-db ring--> writer (alert rows; never behind a COPY batch)
 * Every ring is a lib/ring.h SPSC ring; the only locks are in rare paths
 * (control queues, dead-letter file). */
#ifndef CW_DAEMON_H
#define CW_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "cw.h"
#include "decode.h"
#include "detect.h"
#include "ring.h"

/* ---------------------------------------------------------------- config */
typedef enum { CW_LOG_TEXT = 0, CW_LOG_JSON = 1 } cw_log_format_t;

typedef struct cw_config {
  /* [mqtt] */
  char mqtt_uri[256];        /* uri, default tcp://127.0.0.1:1883 */
  char mqtt_client_id[64];   /* client_id, default chargewatchd (fixed: persistent session) */
  char mqtt_topic[256];      /* topic, default cw/{station}/{socket}/telemetry */
  char mqtt_station_topic[256]; /* station_topic, default cw/{station}/telemetry */
  int mqtt_qos;              /* qos, default 1 */
  int mqtt_keepalive;        /* keepalive seconds, default 30 */
  char mqtt_username[128];   /* username, default "" */
  char mqtt_password_file[256]; /* password_file, default "" */
  int mqtt_reconnect_max_s;  /* reconnect_max_s, default 30 */
  char mqtt_cmd_topic[256];  /* cmd_topic, default cw/alerts/cmd */
  /* [postgres] */
  char pg_conninfo[512];     /* conninfo, default "dbname=chargewatch host=127.0.0.1" */
  int pg_batch_rows;         /* batch_rows, default 5000 */
  int pg_batch_ms;           /* batch_ms, default 200 */
  int pg_partitions_ahead;   /* partitions_ahead (days), default 3 */
  /* [pipeline] */
  int workers;               /* workers, default 1 */
  int ring_slots;            /* ring_slots: ring capacity in 256-byte slots, default 1024 (256 KiB) */
  size_t max_payload;        /* max_payload bytes, default 16384 */
  char deadletter[256];      /* deadletter path, default ./deadletter.log */
  uint64_t deadletter_max_bytes; /* deadletter_max_bytes, default 64 MiB, then rotated (.1) */
  bool auto_register;        /* auto_register, default true */
  int max_age_s;             /* max_age_s, default 604800 (7 days) */
  int shutdown_timeout_s;    /* shutdown_timeout_s, default 10 */
  /* [spool] */
  char spool_dir[256];       /* dir, default ./spool */
  uint64_t spool_max_bytes;  /* max_bytes, default 1 GiB */
  /* [alerts] */
  char alert_log[256];       /* log, default ./alerts.log ("-" = stdout) */
  cw_log_format_t alert_log_format; /* log_format text|json */
  char alert_topic_prefix[128]; /* topic_prefix, default cw/alerts */
  bool alert_retain;         /* retain, default true */
  bool alert_actuate;        /* actuate, default false: publish cut-power on critical */
  /* [detectors] */
  cw_detect_cfg_t det;       /* one key per field of cw_detect_cfg_t */
  /* [http] */
  char http_listen[64];      /* listen, default 127.0.0.1:9187 ("" = off) */
  /* [log] */
  int log_level;             /* level: error|warn|info|debug, default info */
} cw_config_t;

void cw_config_defaults(cw_config_t *c);
/* Load an INI file over the defaults. Unknown sections/keys and bad values are
 * errors: err gets "FILE:LINE: [section] key: reason". 0 or -EINVAL/-errno. */
int cw_config_load(cw_config_t *c, const char *path, char *err, size_t errlen);
/* Fill a cw_decode_cfg_t from the config (compiles the topic patterns). */
int cw_config_decode_cfg(const cw_config_t *c, cw_decode_cfg_t *out);

/* ---------------------------------------------------------------- logging */
void cw_log_set_level(int level);
void cw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define CW_LOG_ERROR 0
#define CW_LOG_WARN 1
#define CW_LOG_INFO 2
#define CW_LOG_DEBUG 3

/* ---------------------------------------------------------------- metrics */
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
  _Atomic uint64_t alerts_published;   /* MQTT publishes acknowledged */
  _Atomic uint64_t alerts_stored;      /* alert_events rows committed */
  _Atomic uint64_t deadletter_written;
  _Atomic int mqtt_connected;
  _Atomic int db_connected;
  _Atomic uint64_t sockets_tracked;
} cw_metrics_t;

/* --------------------------------------------------------- control queue */
/* Rare cross-thread requests to a worker's engine (policies, restore state,
 * threshold reload, operator actions). Mutex-protected list; the worker
 * drains it before each burst. */
typedef enum {
  CW_CTL_STATION,       /* station + station policy */
  CW_CTL_SOCKET,        /* station + socket + socket policy */
  CW_CTL_DETECT_CFG,    /* new thresholds */
  CW_CTL_RESTORE_TS,    /* station + socket + ts_ms */
  CW_CTL_RESTORE_ALERT, /* alert */
  CW_CTL_OPERATOR,      /* alert.id + alert.event (ACKNOWLEDGED/CLOSED) + alert.by */
} cw_ctl_type_t;

typedef struct cw_ctl {
  struct cw_ctl *next;
  cw_ctl_type_t type;
  char station[CW_STATION_MAX + 1];
  uint8_t socket;
  int64_t ts_ms;
  cw_station_policy_t station_policy;
  cw_socket_policy_t socket_policy;
  cw_detect_cfg_t det;
  cw_alert_event_t alert;
} cw_ctl_t;

/* ---------------------------------------------------------------- rings */
/* Ingest record: this header, then topic bytes, then payload bytes. */
typedef struct cw_ingest_hdr {
  int64_t recv_ms;
  uint32_t topic_len;
  uint32_t payload_len;
} cw_ingest_hdr_t;
/* Reading ring record: one cw_reading_t by value.
 * Alert ring record: one cw_alert_event_t by value. */

typedef struct cw_worker cw_worker_t;
typedef struct cw_writer cw_writer_t;
typedef struct cw_mqtt cw_mqtt_t;
typedef struct cw_alerts cw_alerts_t;
typedef struct cw_http cw_http_t;
typedef struct cw_deadletter cw_deadletter_t;

typedef struct cw_daemon {
  cw_config_t cfg;
  char config_path[256];
  uv_loop_t *loop;
  cw_metrics_t m;
  _Atomic int stopping;  /* set by SIGTERM/SIGINT: stop consuming, drain */
  _Atomic int64_t next_alert_id; /* seeded from the database (max id) and the clock */
  int nworkers;
  cw_worker_t **workers;
  cw_writer_t *writer;
  cw_mqtt_t *mqtt;
  cw_alerts_t *alerts;
  cw_http_t *http;
  cw_deadletter_t *deadletter;
  int64_t started_ms;
} cw_daemon_t;

int64_t cw_now_ms(void); /* CLOCK_REALTIME in ms */
/* Worker index that owns a station: FNV-1a(station) % nworkers. */
int cw_daemon_route(const cw_daemon_t *d, const char *station, size_t len);
int64_t cw_daemon_alert_id(cw_daemon_t *d); /* thread-safe, unique, increasing */

/* ---------------------------------------------------------------- worker.c */
int cw_worker_create(cw_daemon_t *d, int index, cw_worker_t **out);
int cw_worker_start(cw_worker_t *w);           /* spawns the thread */
cw_ring_t *cw_worker_ingest(cw_worker_t *w);   /* producer: paho thread */
cw_ring_t *cw_worker_readings(cw_worker_t *w); /* consumer: writer thread */
cw_ring_t *cw_worker_alert_ring(cw_worker_t *w); /* consumer: main loop */
void cw_worker_post(cw_worker_t *w, cw_ctl_t *ctl); /* takes ownership (malloc'd) */
void cw_worker_stop(cw_worker_t *w);  /* drain ingest, then exit the thread; joins */
void cw_worker_free(cw_worker_t *w);

/* ---------------------------------------------------------------- writer.c */
/* Connects (retrying up to a bounded time), applies migrations, keeps
 * partitions ahead, loads station/socket policies and restores per-socket
 * last ts and open alerts by posting cw_ctl_t to the owning workers, seeds
 * d->next_alert_id. Called before the workers start. 0 or -errno (a database
 * that stays down is not fatal: the daemon spools). */
int cw_writer_create(cw_daemon_t *d, cw_writer_t **out);
int cw_writer_start(cw_writer_t *w);
/* Main loop -> writer: store an alert event (alerts + alert_events rows).
 * Never blocks the loop for long: bounded queue, in-memory then spooled. */
int cw_writer_store_alert(cw_writer_t *w, const cw_alert_event_t *ev);
/* SIGHUP: reload station/socket policies from the database and post them. */
void cw_writer_reload(cw_writer_t *w);
/* Drain all reading rings (workers already stopped), flush or spool, exit. */
void cw_writer_stop(cw_writer_t *w);
void cw_writer_free(cw_writer_t *w);

/* ---------------------------------------------------------------- mqtt.c */
int cw_mqtt_create(cw_daemon_t *d, cw_mqtt_t **out);
int cw_mqtt_start(cw_mqtt_t *m); /* connect + subscribe (async, auto-reconnect) */
/* Publish QoS 1 (retained if asked). Safe from the main loop. 0 or -EIO. */
int cw_mqtt_publish(cw_mqtt_t *m, const char *topic, const void *payload, size_t len, int retain);
void cw_mqtt_pause(cw_mqtt_t *m); /* stop consuming, keep session (SIGTERM) */
void cw_mqtt_stop(cw_mqtt_t *m);  /* disconnect, clean session stays off */
void cw_mqtt_free(cw_mqtt_t *m);

/* ---------------------------------------------------------------- alerts.c */
/* Main-loop side: drains the workers' alert rings (woken by uv_async), and
 * sends each event to the alert log, MQTT (retained) and the writer. */
int cw_alerts_create(cw_daemon_t *d, cw_alerts_t **out);
void cw_alerts_wake(cw_alerts_t *a);   /* any thread: uv_async_send */
void cw_alerts_reopen(cw_alerts_t *a); /* SIGHUP: reopen the log */
void cw_alerts_drain(cw_alerts_t *a);  /* main loop: process everything queued */
/* Operator command from cw/alerts/cmd (JSON {"id":..,"action":"ack|close","by":".."}). */
int cw_alerts_command(cw_alerts_t *a, const char *payload, size_t len);
void cw_alerts_free(cw_alerts_t *a);
/* Render an event as the alert JSON of DESIGN.md section 3 / a text log line.
 * Return bytes written (< cap) or -ENOSPC. */
int cw_alert_json(const cw_alert_event_t *ev, char *out, size_t cap);
int cw_alert_text(const cw_alert_event_t *ev, int utc_offset_min, char *out, size_t cap);

/* ---------------------------------------------------------------- deadletter.c */
/* Bounded, rotated file of rejects: one line per reject with time, reason,
 * index, topic and payload (escaped). Thread-safe (mutex). */
int cw_deadletter_open(cw_deadletter_t **out, const char *path, uint64_t max_bytes);
void cw_deadletter_write(cw_deadletter_t *dl, cw_reject_t why, int index, const char *detail,
                         const char *topic, size_t topic_len, const void *payload, size_t len);
void cw_deadletter_reopen(cw_deadletter_t *dl);
void cw_deadletter_close(cw_deadletter_t *dl);

/* ---------------------------------------------------------------- http.c */
int cw_http_start(cw_daemon_t *d, cw_http_t **out); /* /metrics, /healthz */
void cw_http_stop(cw_http_t *h);


/* ------------------------------------------------- additions (daemon side) */
/* Like cw_config_load, from a NUL-terminated string; name stands in for the
 * file name in messages (tests, fuzzing). */
int cw_config_load_string(cw_config_t *c, const char *text, const char *name, char *err,
                          size_t errlen);
/* Split an [http] listen value "HOST:PORT" / "[V6]:PORT" and check the
 * address parses. 0 or -EINVAL. */
int cw_config_split_listen(const char *s, char *host, size_t hostcap, int *port);

/* Shared between the daemon's sinks (deadletter.c): escape bytes as the
 * inside of a JSON string (quotes, backslash, control characters). Invalid
 * UTF-8 becomes \ufffd (CW_ESC_JSON) or \xNN (CW_ESC_HEX, dead-letter file).
 * Writes a NUL-terminated string; returns its length or -ENOSPC (output
 * truncated at a character boundary). */
#define CW_ESC_JSON 0
#define CW_ESC_HEX 1
int cw__escape(char *out, size_t cap, const void *in, size_t len, int mode);
/* "2026-11-29T08:00:00.123+08:00" for ms since the epoch at a UTC offset. */
int cw__iso_time(char *out, size_t cap, int64_t ms, int utc_offset_min);
/* Count dead-letter lines in d->m.deadletter_written (optional). */
void cw_deadletter_bind(cw_deadletter_t *dl, cw_daemon_t *d);

#endif
