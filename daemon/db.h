/* db.h - the writer's database side, shared by its files: db_conn.c
 * (connection, back-off, statements, shutdown guard), db_keyset.c (small
 * sets and buffers), db_copy.c (readings: COPY with its idempotent and
 * bisecting fallbacks), db_alerts.c (alert rows), db_policy.c (migrations,
 * partitions, policies and restored state). Only the writer thread touches
 * a cw_wdb_t (cw_writer_create runs before it starts), except
 * cw__wdb_abandon and the guard. */
#ifndef CW_DB_H
#define CW_DB_H

#include <libpq-fe.h>
#include <pthread.h>

#include "copy.h"
#include "ctl.h"
#include "env.h"
#include "idgen.h"

/* Outcome of a database operation. TEMP: retry later (the caller spools);
 * PERM: the data itself was refused (22xxx/23xxx); DUP: unique violation. */
/* Reconnect and retry back-off, capped (docs/RELIABILITY.md). */
#define CW_WDB_BACKOFF_MIN_MS 100
#define CW_WDB_BACKOFF_MAX_MS 5000

#define CW_WDB_ORIGINS 256 /* MQTT commands remembered until their event is stored */

enum { CW_WDB_OK = 0, CW_WDB_TEMP = 1, CW_WDB_PERM = 2, CW_WDB_DUP = 3 };

typedef struct cw_wkey {
  char station[CW_STATION_MAX + 1];
  uint8_t socket;
  uint8_t used;
  int64_t ts_ms;
} cw_wkey_t;

/* Open-addressing set keyed by (station, socket); grows at half load. */
typedef struct cw_wset {
  cw_wkey_t *e;
  size_t cap, len;
} cw_wset_t;

typedef struct cw_wbuf {
  char *p;
  size_t len, cap;
} cw_wbuf_t;

typedef struct cw_wdb {
  const cw_env_t *env;
  const char *conninfo;   /* the database ([postgres] conninfo unless a shard's own) */
  PGconn *conn;
  int ready;              /* connected and session set up (schema, LISTEN) */
  int connecting;         /* non-blocking connect in progress */
  int poll_state;         /* last PostgresPollingStatusType */
  int64_t connect_started_ms;
  int refused; /* the last connect was refused (credentials, role, database): logged once */
  int64_t retry_at_ms;    /* monotonic: no database use before this */
  int backoff_ms;         /* capped exponential, BACKOFF_MIN..MAX */
  int temp_table;         /* cw_readings_in exists on this connection */
  cw_wset_t known;        /* station codes known to exist in stations */
  cw_wset_t bsock;        /* per batch: (station, socket) -> max ts */
  cw_wset_t bst;          /* per batch: stations to register */
  cw_wset_t dirty;        /* committed since the last sockets flush: max ts */
  cw_wbuf_t a1, a2, a3;   /* array literals for the per-batch statements */
  cw_reading_t *rows;     /* rows parsed back from a COPY buffer */
  size_t nrows, rows_cap;
  cw_copy_t scratch;      /* re-encoding for bisection */
  /* Shutdown under a stuck database: another thread may cancel the running
   * statement (PQcancel is thread-safe on its own PGcancel object) and make
   * the writer spool everything else instead of waiting on the server. */
  pthread_mutex_t cancel_mu;
  PGcancel *cancel;       /* for the current connection, or NULL */
  _Atomic int abandon;    /* set once: no more database use in this process */
  _Atomic int guard_stop; /* ends cw__wdb_guard */
  char last_err[256];     /* server message of the last temporary failure */
  /* What other threads read or write, under share_mu: the operator
   * commands that came over MQTT (cw__wdb_note_mqtt_command, from the main
   * loop; the stored event of one records where it came from) and the
   * server's refusal of the last connect (cw__wdb_refusal, for /healthz). */
  pthread_mutex_t share_mu;
  char refusal[400];      /* "" while the database accepts us */
  struct cw_wdb_origin {
    int64_t id;
    int event;
  } origin[CW_WDB_ORIGINS];
  size_t norigin;
} cw_wdb_t;

static inline int cw__wdb_usable(const cw_wdb_t *db, int64_t now_ms) {
  return db->ready && db->conn && now_ms >= db->retry_at_ms && !atomic_load(&db->abandon);
}

/* conninfo NULL: [postgres] conninfo; kept by pointer (must outlive db). */
int cw__wdb_init(cw_wdb_t *db, const cw_env_t *env, const char *conninfo);
void cw__wdb_free(cw_wdb_t *db);
/* Blocking connect (start-up). 0 or -EIO. */
/* 0, -EIO (unreachable: retry), -EACCES (refused: credentials, role,
 * database; logged at error level with the server's message). */
int cw__wdb_connect_blocking(cw_wdb_t *db);
int cw__wdb_refused(const char *msg); /* 1 if a libpq connect error is a refusal */
/* Any thread: 1 and the server's message (credentials cut out) while the
 * database refuses our connections (the last connect was refused), else 0. */
int cw__wdb_refusal(cw_wdb_t *db, char *why, size_t cap);
/* Drive a non-blocking reconnect; returns 1 once when a new connection is
 * established (the caller then sets the session up and sets ready). */
int cw__wdb_poll_connect(cw_wdb_t *db, int64_t now_ms);
/* A temporary failure: drop a broken connection and back off. Logs once,
 * with the server message the failed operation left in last_err. */
void cw__wdb_down(cw_wdb_t *db, const char *what);
void cw__wdb_close(cw_wdb_t *db);
/* Any thread: stop using the database for good and cancel the statement in
 * progress, if any (it then fails as a temporary error: the batch spools). */
void cw__wdb_abandon(cw_wdb_t *db);
/* Thread body (arg: the cw_wdb_t) that abandons the database when a shutdown
 * runs long; returns once guard_stop is set. See db_conn.c. */
void *cw__wdb_guard(void *arg);
int cw__wdb_exec(PGconn *c, const char *sql); /* command or query; 0 or -EIO */
/* The class of a failed result: CW_WDB_TEMP unless the server blamed the
 * data (22xxx, 23xxx: PERM; 23505: DUP); the message goes to msg. */
int cw__wdb_classify(PGconn *c, const PGresult *r, char *msg, size_t cap);
/* Run a statement (n parameters, text); CW_WDB_OK or its class, with the
 * server message in msg. */
int cw__wdb_run(cw_wdb_t *db, const char *sql, int n, const char *const *vals, char *msg, size_t cap);
void cw__wdb_rollback(cw_wdb_t *db);
/* Keep a temporary failure's message for the cw__wdb_down that follows. */
void cw__wdb_remember(cw_wdb_t *db, const char *msg);

/* db_alerts.c. Any thread: the operator action (ack, rectify, close) on
 * alert id came over MQTT; the alert_events row of the event it causes
 * gets detail.via "mqtt", detail.topic ([mqtt] cmd_topic) and
 * detail.publishers ([mqtt] cmd_publishers: who the broker lets publish
 * there) beside detail.by (the name the command claims, control characters
 * escaped). Remembered in memory for the last CW_WDB_ORIGINS commands. */
void cw__wdb_note_mqtt_command(cw_wdb_t *db, int64_t id, cw_event_t event);

/* db_keyset.c. Find or insert (station, socket); *created tells which; NULL
 * on ENOMEM (or not found without insert). */
cw_wkey_t *cw__wset_get(cw_wset_t *s, const char *st, uint8_t sock, int insert, int *created);
void cw__wset_clear(cw_wset_t *s);
int cw__wbuf_add(cw_wbuf_t *b, const char *s, size_t n); /* 0 or -ENOMEM */

/* db_policy.c. Post every station's and socket's policy through the port;
 * with restore, also each socket's last stored ts and (restore_alerts) the
 * alerts not closed, and raise ids past the largest stored alert id. Also
 * refreshes the set of station codes the writer knows. 0, -EIO or -ENOMEM. */
int cw__db_load_policies(cw_wdb_t *db, const cw_ctl_port_t *port, cw_idgen_t *ids, int restore,
                         int restore_alerts);
/* db_lifecycle.c. Roll the last complete hours up into readings_hourly and,
 * with retain_days > 0, drop the daily partitions older than that (each
 * logged and counted in partitions_dropped). Failures are logged, not
 * returned: the readings path does not depend on them. */
void cw__db_lifecycle(cw_wdb_t *db, int retain_days);
/* Per-shard restore ([cluster] takeover): post the last stored ts of every
 * socket (from ts_conn: the database holding the shard's readings) and the
 * alerts not closed (from c) of the stations keep accepts. Idempotent (a
 * restored ts never lowers the engine's; an alert keeps its id). The
 * number posted, or -EIO / -ENOMEM. */
int cw__db_restore_where(PGconn *c, PGconn *ts_conn, const cw_ctl_port_t *port,
                         int (*keep)(void *ctx, const char *station), void *keep_ctx);
/* Daily readings partitions from yesterday to ahead days on. 0 or -EIO. */
int cw__db_partitions(cw_wdb_t *db, int ahead);
/* Apply schema/NNN_*.sql not yet in schema_migrations, in order, each in its
 * own transaction under an advisory lock (two daemons do not race).
 * 0, -EIO (database gone) or -EPROTO (a migration fails). */
int cw__wdb_migrate(PGconn *c);
void cw__wdb_known_add(cw_wdb_t *db, const char *station);
void cw__wdb_known_clear(cw_wdb_t *db);
/* Store one finished COPY buffer: COPY, then the idempotent path on a unique
 * violation, then bisection with dead-lettering on data errors. Returns
 * CW_WDB_OK (rows = rows inserted) or CW_WDB_TEMP (message in last_err, not
 * logged: the caller's cw__wdb_down logs it). */
int cw__wdb_store_buf(cw_wdb_t *db, const uint8_t *buf, size_t len, uint64_t *rows);
/* Store alert events (alerts upsert + alert_events) in one transaction; an
 * event the database refuses is logged and skipped. CW_WDB_OK or CW_WDB_TEMP. */
/* Write sockets.last_ts (and register new sockets when auto_register) for
 * every socket committed since the last call, in one transaction. Deferred
 * from the batches because it costs as much as the COPY itself when every
 * row of a batch is a different socket; a restart after a crash may then
 * restore a last ts up to one flush interval old, which the unique index
 * absorbs (the replayed rows take the ON CONFLICT DO NOTHING path).
 * CW_WDB_OK or CW_WDB_TEMP. */
int cw__wdb_flush_sockets(cw_wdb_t *db);
int cw__wdb_store_alerts(cw_wdb_t *db, const cw_alert_event_t *v, size_t n);
/* Refresh m->alerts_open from the alerts table (db_alerts.c). 0 or -EIO. */
int cw__wdb_alerts_open(cw_wdb_t *db, cw_metrics_t *m);

/* The current state of every alert not closed, as its retained MQTT
 * message should show it (one event per alert: raised, escalated, cleared
 * or acknowledged), read on a short connection of its own (main thread, at
 * start, for the retained-state reconciliation). 0, or -EIO (logged). */
int cw_db_alert_states(const char *conninfo, void (*fn)(void *ctx, const cw_alert_event_t *ev),
                       void *ctx);

#endif
