/* writer.c - the PostgreSQL side of chargewatchd: a thread that owns a libpq
 * connection, turns the workers' reading rings into binary COPY batches,
 * stores alert events, keeps daily partitions ahead and forwards operator
 * NOTIFYs (the main writer; a readings writer for a shard's own database
 * does the readings part only). While the database is unreachable finished batches go to the disk
 * spool (lib/spool.h) and are replayed in order when it returns, so a worker
 * never waits on the database for longer than one disk append
 * (docs/ARCHITECTURE.md, docs/RELIABILITY.md). */
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "copy.h"
#include "fsutil.h"
#include "spool.h"
#include "text.h"
#include "writer.h"
#include "writer_int.h"

#define START_CONNECT_MS 10000      /* cw_writer_create waits this long for the database */
#define HOUSEKEEP_MS (3600 * 1000)  /* partitions ahead: hourly and at each UTC day change */
#define NOTIFY_POLL_MS 50
#define LAST_TS_FLUSH_MS 2000       /* sockets.last_ts lags commits by at most this */
#define SPOOL_SEGMENT_BYTES (64u << 20)
#define REPLAY_SLICE_MS 200         /* spool replay yields to alerts and rings this often */

/* An ingest client's journal (cw_writer_journal). j is published last
 * (release); processed and ctx are written before it and never change. */
typedef struct jsource {
  _Atomic(cw_journal_t *) j;
  int64_t (*processed)(void *ctx);
  void *ctx;
  /* writer thread */
  int64_t snap;    /* processed() at the start of the current drain pass */
  int64_t covered; /* every message up to it is in the batch or stored */
} jsource_t;

struct cw_writer {
  cw_writer_cfg_t cfg;     /* readings points at our own copy */
  const cw_env_t *env;
  pthread_t thread;
  int started;
  _Atomic int stop;
  _Atomic int reload;
  _Atomic int hurry;        /* cw_writer_sync asked: reconnect now, not after the back-off */
  int is_main;              /* [postgres] conninfo: alerts, policies, NOTIFY */
  cw_walerts_t alerts;      /* main: alert hand-off, alert spool (writer_alerts.c) */
  _Atomic uint64_t sync_req, sync_done; /* cw_writer_sync generations */
  uint64_t spool_counted;   /* this writer's share of m->spool_bytes */
  /* writer-thread state below */
  cw_wdb_t db;
  cw_spool_t *spool;       /* spool_dir/readings: finished COPY buffers */
  cw_copy_t batch;
  cw_hist_rows_t batch_ts; /* its rows' ts, for publish_to_store at the commit */
  int64_t batch_first_ms;  /* monotonic time of the first pending row */
  int held;                /* batch finished but neither stored nor spooled (spool full) */
  int64_t held_retry_ms;
  int policies_loaded;
  int64_t next_housekeep_ms;
  int64_t next_notify_ms;
  int64_t next_sockets_ms;
  int64_t next_spool_log_ms;
  int utc_day;
  int wait_next;           /* ring to sleep on next when there are several */
  uint64_t torn_seen;      /* stats.torn of the readings spool already logged */
  pthread_t guard;         /* shutdown guard (cw__wdb_guard) */
  int guard_started;
  jsource_t js[CW_MAX_SHARDS];
  _Atomic int njs;         /* sources [0, njs) may be set */
};

/* m->spool_bytes is the sum over the writers: each adds its change. */
static void update_spool_metrics(cw_writer_t *w) {
  cw_spool_stats_t a = {0};
  if (w->spool) cw_spool_stats(w->spool, &a);
  uint64_t now = a.bytes + (w->is_main ? cw__walerts_spool_bytes(&w->alerts) : 0);
  atomic_fetch_add(&w->env->m->spool_bytes, now - w->spool_counted); /* modular: may shrink */
  w->spool_counted = now;
}

static int spool_pending(cw_writer_t *w) {
  cw_spool_stats_t st;
  cw_spool_stats(w->spool, &st);
  /* bytes without records: a damaged tail left after the last good record;
   * replay walks over it (and logs it) so its segment goes too */
  return st.records > 0 || st.bytes > 0;
}

/* ------------------------------------------------------------- session */

static int housekeep(cw_writer_t *w) {
  int rc = cw__db_partitions(&w->db, w->env->cfg->pg_partitions_ahead);
  if (rc == 0) cw__db_lifecycle(&w->db, w->env->cfg->pg_retain_days);
  w->next_housekeep_ms = cw_mono_ms() + HOUSEKEEP_MS;
  w->utc_day = (int)(time(NULL) / 86400);
  return rc;
}

/* A readings writer only needs the station codes its database has (it
 * registers the others); policies come from the main database. */
static int load_known(cw_writer_t *w) {
  PGresult *r = PQexec(w->db.conn, "SELECT code FROM stations");
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  if (ok) {
    cw__wdb_known_clear(&w->db);
    for (int i = 0; i < PQntuples(r); i++) cw__wdb_known_add(&w->db, PQgetvalue(r, i, 0));
  } else {
    cw_log(CW_LOG_ERROR, "writer %s: loading station codes: %s", w->cfg.spool_sub,
           PQerrorMessage(w->db.conn));
  }
  PQclear(r);
  return ok ? 0 : -EIO;
}

static int load_policies(cw_writer_t *w, int restore, int restore_alerts) {
  int rc = w->is_main ? cw__db_load_policies(&w->db, &w->cfg.port, w->cfg.ids, restore, restore_alerts)
                      : load_known(w);
  if (rc == 0) w->policies_loaded = 1;
  return rc;
}

/* After every (re)connection: schema, partitions, LISTEN; policies the first
 * time. 0, -EIO (connection lost again) or -EPROTO (schema unusable). */
static int session_setup(cw_writer_t *w, int first) {
  int rc = cw__wdb_migrate(w->db.conn);
  if (rc) return rc;
  /* A statement that hangs (locks, a stuck server) must end in a temporary
   * error and the spool, not stall the writer and then the workers. */
  if (housekeep(w) || (w->is_main && cw__wdb_exec(w->db.conn, "LISTEN cw_alert_cmd")) ||
      cw__wdb_exec(w->db.conn, "SET statement_timeout = '60s'"))
    return PQstatus(w->db.conn) == CONNECTION_OK ? -EPROTO : -EIO;
  if (!w->policies_loaded) return load_policies(w, 1, first);
  return 0;
}

/* ----------------------------------------------------------- alerts */

/* The writer sleeps on its reading rings (cw_ring_wait): a kick on each
 * wakes it wherever it sleeps. */
static void kick(cw_writer_t *w) {
  for (int i = 0; i < w->cfg.nrings; i++) cw_ring_kick(w->cfg.readings[i]);
}

int cw_writer_store_alert(cw_writer_t *w, const cw_alert_event_t *ev) {
  int rc = cw__walerts_push(&w->alerts, ev);
  if (rc) return rc;
  kick(w); /* wake the writer if it sleeps */
  return 0;
}

int cw_writer_db_refusal(cw_writer_t *w, char *why, size_t cap) {
  return cw__wdb_refusal(&w->db, why, cap);
}

void cw_writer_note_mqtt_command(cw_writer_t *w, int64_t id, cw_event_t event) {
  cw__wdb_note_mqtt_command(&w->db, id, event);
}

static void alerts_pump(cw_writer_t *w) {
  if (!w->is_main) return;
  cw__walerts_pump(&w->alerts, &w->db);
  update_spool_metrics(w);
}

/* ------------------------------------------------------------- readings */

/* Store a finished COPY buffer, falling back to the idempotent path and to
 * bisection (cw__wdb_store_buf does both). Every row of the buffer goes into
 * publish_to_store as of the commit: from ts, the rows' ts noted while the
 * batch was encoded (one atomic add per bucket per batch), or, for a batch
 * replayed from the spool (only bytes) or one whose ts could not all be
 * noted, by parsing the buffer. */
static int store(cw_writer_t *w, const uint8_t *buf, size_t len, const cw_hist_rows_t *ts,
                 uint64_t *rows) {
  int st = cw__wdb_store_buf(&w->db, buf, len, rows);
  if (st == CW_WDB_OK) {
    int64_t now = cw_now_ms();
    atomic_fetch_add(&w->env->m->rows_committed, *rows);
    atomic_fetch_add(&w->env->m->batches_committed, 1);
    atomic_store(&w->env->m->last_commit_ms, now);
    if (ts && !ts->lost) {
      cw_hist_local_t l = {0};
      cw_hist_rows_observe(ts, now, &l);
      cw_hist_add(&w->env->m->publish_to_store, &l);
    } else {
      cw_hist_observe_copy(&w->env->m->publish_to_store, buf, len, now);
    }
  }
  return st;
}

/* ------------------------------------------------------------- journals
 *
 * A drain pass that empties every reading ring takes every reading pushed
 * before it began, so every message up to the processed() snapshot taken
 * then (cw_pipeline_jpos_processed) is in the batch or stored: the snapshot
 * becomes `covered`, committed into the journal once the batch is stored or
 * spooled (fsync'd), at once when the batch is empty. A pass cut short (a
 * held batch) covers nothing new. */

void cw_writer_journal(cw_writer_t *w, int k, cw_journal_t *j, int64_t (*processed)(void *ctx),
                       void *ctx) {
  if (k < 0 || k >= CW_MAX_SHARDS) return;
  w->js[k].processed = processed;
  w->js[k].ctx = ctx;
  atomic_store_explicit(&w->js[k].j, j, memory_order_release); /* pairs with jsource() */
  int n = atomic_load(&w->njs);
  while (n < k + 1 && !atomic_compare_exchange_weak(&w->njs, &n, k + 1)) {
  }
}

static cw_journal_t *jsource(cw_writer_t *w, int k) {
  return atomic_load_explicit(&w->js[k].j, memory_order_acquire);
}

static void journal_snap(cw_writer_t *w) {
  for (int k = 0, n = atomic_load(&w->njs); k < n; k++)
    if (jsource(w, k)) w->js[k].snap = w->js[k].processed(w->js[k].ctx);
}

static void journal_commit(cw_writer_t *w) {
  for (int k = 0, n = atomic_load(&w->njs); k < n; k++) {
    cw_journal_t *j = jsource(w, k);
    if (j && w->js[k].covered > 0) cw_journal_commit(j, w->js[k].covered);
  }
}

static void journal_covered(cw_writer_t *w) {
  for (int k = 0, n = atomic_load(&w->njs); k < n; k++) w->js[k].covered = w->js[k].snap;
  if (w->batch.rows == 0 && !w->held) journal_commit(w);
}

static void batch_done(cw_writer_t *w) {
  cw_copy_reset(&w->batch);
  cw_hist_rows_reset(&w->batch_ts);
  w->held = 0;
  journal_commit(w); /* stored or spooled: what was covered is safe */
}

/* The current batch is full or old: COMMIT it, or spool it when the database
 * is unusable or older spooled batches must go first. When even the spool
 * refuses (full disk), the batch is held and the rings are not drained: the
 * workers then wait, never drop (STYLE.md: bound every queue). */
static void flush(cw_writer_t *w) {
  int64_t now = cw_mono_ms();
  if (!w->held) {
    if (w->batch.rows == 0) return;
    if (cw_copy_finish(&w->batch)) {
      cw_log(CW_LOG_ERROR, "writer: out of memory finishing a batch");
      return;
    }
    w->held = 1;
  } else if (now < w->held_retry_ms) {
    return;
  }
  if (cw__wdb_usable(&w->db, now) && !spool_pending(w)) {
    uint64_t rows = 0;
    if (store(w, w->batch.buf, w->batch.len, &w->batch_ts, &rows) == CW_WDB_OK) {
      batch_done(w);
      return;
    }
    cw__wdb_down(&w->db, "readings batch");
  }
  int rc = cw_spool_append(w->spool, w->batch.buf, w->batch.len);
  if (rc == 0) {
    atomic_fetch_add(&w->env->m->batches_spooled, 1);
    update_spool_metrics(w);
    batch_done(w);
    return;
  }
  w->held_retry_ms = now + 1000;
  if (now >= w->next_spool_log_ms) {
    cw_log(CW_LOG_ERROR, "writer: cannot spool a batch of %u rows (%s); holding it, workers will wait",
           w->batch.rows, strerror(-rc));
    w->next_spool_log_ms = now + 10000;
  }
}

/* Replay spooled batches in order while the database takes them, for at most
 * REPLAY_SLICE_MS so alerts and the rings get their turn. */
static void replay(cw_writer_t *w) {
  int64_t until = cw_mono_ms() + REPLAY_SLICE_MS;
  const void *data;
  size_t len;
  while (cw__wdb_usable(&w->db, cw_mono_ms()) && cw_mono_ms() < until) {
    int rc = cw_spool_peek(w->spool, &data, &len);
    cw__spool_damage(w->spool, &w->torn_seen, "readings", w->env->cfg->spool_dir);
    if (rc <= 0) {
      if (rc < 0) cw_log(CW_LOG_ERROR, "writer: reading the spool: %s", strerror(-rc));
      break;
    }
    uint64_t rows = 0;
    if (store(w, data, len, NULL, &rows) != CW_WDB_OK) {
      cw__wdb_down(&w->db, "spool replay");
      break;
    }
    cw_spool_ack(w->spool);
    atomic_fetch_add(&w->env->m->spool_replayed, 1);
    update_spool_metrics(w);
  }
}

typedef struct {
  cw_writer_t *w;
  int err;
} drain_ctx_t;

static int drain_one(void *ctx, const void *rec, size_t len) {
  drain_ctx_t *c = ctx;
  cw_reading_t r;
  if (len != sizeof(r)) return 0; /* not a reading: cannot happen, skip */
  memcpy(&r, rec, sizeof(r));
  if (cw_copy_add(&c->w->batch, &r)) {
    c->err = -ENOMEM;
    return 1;
  }
  cw_hist_rows_note(&c->w->batch_ts, r.ts_ms);
  return 0;
}

/* Move rows from every reading ring into the batch, flushing whenever it
 * reaches batch_rows. Returns the rows taken. */
static size_t drain(cw_writer_t *w) {
  const cw_config_t *cfg = w->env->cfg;
  size_t total = 0;
  int emptied = 0; /* rings seen empty during this pass */
  uint32_t max = cfg->pg_batch_rows > 0 ? (uint32_t)cfg->pg_batch_rows : 5000;
  journal_snap(w);
  for (int i = 0; i < w->cfg.nrings; i++) {
    cw_ring_t *ring = w->cfg.readings[i];
    while (!w->held) {
      drain_ctx_t c = {w, 0};
      size_t room = max > w->batch.rows ? max - w->batch.rows : 0;
      size_t n = room ? cw_ring_pop_burst(ring, room, drain_one, &c) : 0;
      if (n && w->batch.rows == n) w->batch_first_ms = cw_mono_ms();
      total += n;
      if (w->batch.rows >= max) flush(w);
      if (c.err) {
        cw_log(CW_LOG_ERROR, "writer: out of memory growing a batch");
        flush(w);
      }
      if (n < room && !c.err) emptied++; /* fewer than asked for: it was empty */
      if (n == 0 || n < room) break;
    }
  }
  if (emptied == w->cfg.nrings) journal_covered(w);
  return total;
}

/* ------------------------------------------------------------- thread */

static void notifications(cw_writer_t *w) {
  PGconn *c = w->db.conn;
  PGnotify *nt;
  if (!PQconsumeInput(c)) {
    cw__wdb_down(&w->db, "listen");
    return;
  }
  while ((nt = PQnotifies(c)) != NULL) {
    /* cw_ack / cw_close in SQL: the same command as on MQTT (control.h) */
    if (w->cfg.command) w->cfg.command(w->cfg.command_ctx, nt->extra, strlen(nt->extra));
    PQfreemem(nt);
  }
}

/* Reconnect progress and the periodic work that needs the connection. */
static void tick(cw_writer_t *w, int64_t now) {
  /* a sync waits on this writer (a shard taken or given away): the next
   * reconnect is tried now, once per sync (the database is often back
   * seconds before the back-off ends: the lease's own connection is up) */
  if (atomic_exchange(&w->hurry, 0) && !w->db.conn && w->db.retry_at_ms > now) w->db.retry_at_ms = now;
  if (cw__wdb_poll_connect(&w->db, now) == 1) {
    int rc = session_setup(w, 0);
    if (rc) {
      /* reconnect and set up again after the back-off */
      cw__wdb_close(&w->db);
      cw__wdb_down(&w->db, rc == -EPROTO ? "schema setup" : "session setup");
    } else {
      w->db.ready = 1;
      cw_log(CW_LOG_INFO, "writer: database connection restored");
    }
  }
  if (w->is_main) atomic_store(&w->env->m->db_connected, w->db.ready);
  if (!w->db.ready) return;
  if (now >= w->next_housekeep_ms || (int)(time(NULL) / 86400) != w->utc_day) housekeep(w);
  if (atomic_exchange(&w->reload, 0)) load_policies(w, 0, 0); /* readings writer: station codes */
  if (w->is_main && now >= w->next_notify_ms) {
    notifications(w);
    w->next_notify_ms = now + NOTIFY_POLL_MS;
  }
  if (now >= w->next_sockets_ms && cw__wdb_usable(&w->db, now)) {
    if (cw__wdb_flush_sockets(&w->db) != CW_WDB_OK) cw__wdb_down(&w->db, "sockets.last_ts");
    w->next_sockets_ms = now + LAST_TS_FLUSH_MS;
  }
}

static void wait_rings(cw_writer_t *w, int timeout_ms) {
  int n = w->cfg.nrings;
  if (timeout_ms <= 0) return;
  if (n == 1) {
    cw_ring_wait(w->cfg.readings[0], timeout_ms);
  } else if (n > 1) {
    /* One waiter per ring is all the ring offers: visit them in turn with a
     * short sleep each (rows wait at most ~2 ms longer than with one ring). */
    w->wait_next = (w->wait_next + 1) % n;
    cw_ring_wait(w->cfg.readings[w->wait_next], timeout_ms < 2 ? timeout_ms : 2);
  } else {
    cw_sleep_ms(timeout_ms);
  }
}

static void final_drain(cw_writer_t *w) {
  int64_t budget = 1000LL * (w->env->cfg->shutdown_timeout_s > 0 ? w->env->cfg->shutdown_timeout_s : 10);
  int64_t deadline = cw_mono_ms() + budget, replay_until = cw_mono_ms() + budget / 2;
  /* Older spooled batches first while there is time (half the budget); what
   * remains stays on disk for the next start. */
  while (cw__wdb_usable(&w->db, cw_mono_ms()) && spool_pending(w) && cw_mono_ms() < replay_until) replay(w);
  while (drain(w) > 0 || w->held) {
    if (w->held) {
      flush(w);
      if (w->held) {
        if (cw_mono_ms() >= deadline) break;
        cw_sleep_ms(100);
      }
    }
  }
  flush(w);
  while (w->held && cw_mono_ms() < deadline) {
    cw_sleep_ms(100);
    flush(w);
  }
  if (w->held)
    cw_log(CW_LOG_ERROR, "writer: shutdown: %u rows could be neither stored nor spooled", w->batch.rows);
  alerts_pump(w);
  if (cw__wdb_usable(&w->db, cw_mono_ms()) && cw__wdb_flush_sockets(&w->db) != CW_WDB_OK)
    cw_log(CW_LOG_WARN, "writer: shutdown: sockets.last_ts not updated (replays stay idempotent)");
}

/* cw_writer_sync: everything the rings hold now goes out (committed or
 * spooled) with sockets.last_ts and the queued alerts; then the generation
 * asked for is done. A held batch (spool full) leaves it pending. */
static void sync_step(cw_writer_t *w) {
  uint64_t want = atomic_load(&w->sync_req);
  if (atomic_load(&w->sync_done) >= want) return;
  while (!w->held && drain(w) > 0) {
  }
  flush(w);
  if (w->held) return;
  alerts_pump(w);
  int64_t now = cw_mono_ms();
  /* rows in the spool are on disk: they count as out (replayed later) */
  if (cw__wdb_usable(&w->db, now) && !spool_pending(w)) {
    if (cw__wdb_flush_sockets(&w->db) != CW_WDB_OK) {
      cw__wdb_down(&w->db, "sockets.last_ts");
      return;
    }
    w->next_sockets_ms = now + LAST_TS_FLUSH_MS;
  }
  if (w->is_main && cw__walerts_pending(&w->alerts)) return;
  atomic_store(&w->sync_done, want);
}

static void *run(void *arg) {
  cw_writer_t *w = arg;
  int batch_ms = w->env->cfg->pg_batch_ms > 0 ? w->env->cfg->pg_batch_ms : 200;
  while (!atomic_load(&w->stop)) {
    int64_t now = cw_mono_ms();
    tick(w, now);
    sync_step(w);
    alerts_pump(w); /* alerts never wait behind a readings batch */
    if (cw__wdb_usable(&w->db, now) && spool_pending(w)) replay(w);
    size_t got = w->held ? 0 : drain(w);
    now = cw_mono_ms();
    if (w->held || (w->batch.rows && now - w->batch_first_ms >= batch_ms)) flush(w);
    if (got) continue;
    int timeout = w->batch.rows ? (int)(w->batch_first_ms + batch_ms - now) : batch_ms;
    if (w->held || (cw__wdb_usable(&w->db, now) && spool_pending(w))) timeout = timeout < 10 ? timeout : 10;
    if (cw__walerts_pending(&w->alerts)) timeout = 0;
    wait_rings(w, timeout > NOTIFY_POLL_MS ? NOTIFY_POLL_MS : timeout);
  }
  final_drain(w);
  return NULL;
}

/* ------------------------------------------------------------- lifecycle */

int cw_writer_create(const cw_writer_cfg_t *wc, cw_writer_t **out) {
  cw_writer_t *w = calloc(1, sizeof(*w));
  const cw_config_t *cfg = wc->env->cfg;
  char path[PATH_MAX], rdir[PATH_MAX];
  int rc;
  *out = NULL;
  if (!w) return -ENOMEM;
  w->cfg = *wc;
  w->env = wc->env;
  w->is_main = wc->conninfo == NULL;
  w->cfg.readings = calloc(wc->nrings > 0 ? (size_t)wc->nrings : 1, sizeof *w->cfg.readings);
  if (!w->cfg.readings) {
    free(w);
    return -ENOMEM;
  }
  for (int i = 0; i < wc->nrings; i++) w->cfg.readings[i] = wc->readings[i];
  rc = cw_copy_init(&w->batch, (size_t)(cfg->pg_batch_rows > 0 ? cfg->pg_batch_rows : 5000) * 96);
  if (rc) goto fail;
  rc = cw__wdb_init(&w->db, w->env, wc->conninfo);
  if (rc) goto fail;
  if ((rc = cw_mkdir_p(cfg->spool_dir)) != 0) {
    cw_log(CW_LOG_ERROR, "writer: spool directory %s: %s", cfg->spool_dir, strerror(-rc));
    goto fail;
  }
  if (wc->spool_sub) {
    snprintf(path, sizeof(path), "%s/%s", cfg->spool_dir, wc->spool_sub);
    if ((rc = cw_mkdir_p(path)) != 0) {
      cw_log(CW_LOG_ERROR, "writer: spool directory %s: %s", path, strerror(-rc));
      goto fail;
    }
  }
  snprintf(path, sizeof(path), "%s%s%s/readings", cfg->spool_dir, wc->spool_sub ? "/" : "",
           wc->spool_sub ? wc->spool_sub : "");
  snprintf(rdir, sizeof rdir, "%s", path);
  rc = cw_spool_open(&w->spool, path, cfg->spool_max_bytes, SPOOL_SEGMENT_BYTES);
  if (rc == 0 && w->is_main) {
    snprintf(path, sizeof(path), "%s/alerts", cfg->spool_dir);
    rc = cw__walerts_open(&w->alerts, w->env, path, SPOOL_SEGMENT_BYTES);
  }
  if (rc) {
    cw_log(CW_LOG_ERROR, "writer: opening spool %s: %s", path, strerror(-rc));
    goto fail;
  }
  update_spool_metrics(w);
  /* Bounded wait for the database at start, then carry on without it. */
  int64_t until = cw_mono_ms() + START_CONNECT_MS;
  int backoff = CW_WDB_BACKOFF_MIN_MS;
  while ((rc = cw__wdb_connect_blocking(&w->db)) != 0 && rc != -EACCES &&
         cw_mono_ms() + backoff < until) {
    cw_sleep_ms(backoff);
    backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
  }
  if (rc == -EACCES) goto fail; /* refused: not an outage, spooling would never end */
  if (rc == 0) {
    rc = session_setup(w, 1);
    if (rc == -EPROTO) goto fail; /* reachable but the schema cannot be applied: fatal */
    if (rc) {
      cw__wdb_close(&w->db);
      cw__wdb_down(&w->db, "session setup");
    } else {
      w->db.ready = 1;
    }
  }
  if (!w->db.ready) {
    char ci[sizeof cfg->pg_conninfo];
    cw_conninfo_redact(ci, sizeof ci, w->db.conninfo); /* a password stays out of the log */
    cw_log(CW_LOG_WARN, "writer: database unreachable (%s); spooling to %s until it returns", ci,
           rdir);
  }
  if (w->is_main) atomic_store(&w->env->m->db_connected, w->db.ready);
  *out = w;
  return 0;
fail:
  cw_writer_free(w);
  return rc < 0 ? rc : -EIO;
}

int cw_writer_start(cw_writer_t *w) {
  int rc = pthread_create(&w->thread, NULL, run, w);
  if (rc) return -rc;
  w->started = 1;
  pthread_setname_np(w->thread, w->is_main ? "cw-writer" : "cw-shard-writer"); /* for perf, top */
  /* without the guard a stuck database can only delay the stop */
  if (pthread_create(&w->guard, NULL, cw__wdb_guard, &w->db) == 0) {
    w->guard_started = 1;
    pthread_setname_np(w->guard, "cw-db-guard");
  } else cw_log(CW_LOG_WARN, "writer: no shutdown guard thread");
  return 0;
}

void cw_writer_reload(cw_writer_t *w) { atomic_store(&w->reload, 1); }

int cw_writer_sync(cw_writer_t *w, int timeout_ms) {
  uint64_t want = atomic_fetch_add(&w->sync_req, 1) + 1;
  int64_t until = cw_mono_ms() + timeout_ms;
  atomic_store(&w->hurry, 1);
  while (atomic_load(&w->sync_done) < want) {
    if (atomic_load(&w->stop)) return -ECANCELED; /* stopping: the final drain stores it */
    if (cw_mono_ms() >= until) return -ETIMEDOUT;
    kick(w);
    cw_sleep_ms(10);
  }
  return 0;
}

void cw_writer_stop(cw_writer_t *w) {
  if (!w) return;
  atomic_store(&w->stop, 1);
  kick(w);
  if (w->started) {
    pthread_join(w->thread, NULL);
    w->started = 0;
  } else {
    final_drain(w); /* never started: still store or spool what the rings hold */
  }
  if (w->guard_started) {
    atomic_store(&w->db.guard_stop, 1);
    pthread_join(w->guard, NULL);
    w->guard_started = 0;
  }
  cw__wdb_close(&w->db);
  if (w->is_main) atomic_store(&w->env->m->db_connected, 0);
}

void cw_writer_free(cw_writer_t *w) {
  if (!w) return;
  if (w->started) cw_writer_stop(w);
  cw__wdb_close(&w->db);
  cw__wdb_free(&w->db);
  if (w->spool) cw_spool_close(w->spool);
  if (w->is_main) cw__walerts_close(&w->alerts);
  cw_copy_free(&w->batch);
  cw_hist_rows_free(&w->batch_ts);
  free(w->cfg.readings);
  free(w);
}
