/* writer_db.c - the libpq half of the writer: connecting (blocking at start,
 * non-blocking afterwards so the thread keeps spooling), storing a binary
 * COPY batch with sockets.last_ts kept current, the idempotent fallback for
 * replayed batches, bisection that quarantines rows the database refuses,
 * and the alert rows. Errors are sorted into temporary (retry, spool) and
 * permanent (the data: dead-letter it) as STYLE.md asks. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "hash.h"
#include "writer_int.h"

#define CONNECT_TIMEOUT_MS 10000 /* a non-blocking connect attempt gives up after this */
#define ADVISORY_KEY "chargewatch.migrations"

typedef struct { const char *name; const char *sql; } cw_migration_t;
extern const cw_migration_t cw_migrations[]; /* build/schema_sql.c (schema/embed.sh) */
extern const size_t cw_migrations_count;

/* A temporary failure's server message, logged once by cw__wdb_down. */
static void remember(cw_wdb_t *db, const char *msg) {
  snprintf(db->last_err, sizeof db->last_err, "%s", msg);
  size_t n = strlen(db->last_err);
  while (n && (db->last_err[n - 1] == '\n' || db->last_err[n - 1] == ' ')) db->last_err[--n] = 0;
}

/* ------------------------------------------------------------- small sets */

static uint64_t key_hash(const char *st, uint8_t sock) { return cw_fnv1a64_str_byte(st, sock); }

static int wset_grow(cw_wset_t *s) {
  size_t ncap = s->cap ? s->cap * 2 : 1024;
  cw_wkey_t *ne = calloc(ncap, sizeof(*ne));
  if (!ne) return -ENOMEM;
  for (size_t i = 0; i < s->cap; i++) {
    if (!s->e[i].used) continue;
    size_t j = key_hash(s->e[i].station, s->e[i].socket) & (ncap - 1);
    while (ne[j].used) j = (j + 1) & (ncap - 1);
    ne[j] = s->e[i];
  }
  free(s->e);
  s->e = ne;
  s->cap = ncap;
  return 0;
}

/* Find or insert; *created tells which. NULL on ENOMEM. */
static cw_wkey_t *wset_get(cw_wset_t *s, const char *st, uint8_t sock, int insert, int *created) {
  if (created) *created = 0;
  if (insert && (s->len + 1) * 2 > s->cap && wset_grow(s)) return NULL;
  if (!s->cap) return NULL;
  size_t j = key_hash(st, sock) & (s->cap - 1);
  while (s->e[j].used) {
    if (s->e[j].socket == sock && !strcmp(s->e[j].station, st)) return &s->e[j];
    j = (j + 1) & (s->cap - 1);
  }
  if (!insert) return NULL;
  cw_wkey_t *k = &s->e[j];
  snprintf(k->station, sizeof(k->station), "%s", st);
  k->socket = sock;
  k->used = 1;
  k->ts_ms = INT64_MIN;
  s->len++;
  if (created) *created = 1;
  return k;
}

static void wset_clear(cw_wset_t *s) {
  if (s->len) memset(s->e, 0, s->cap * sizeof(*s->e));
  s->len = 0;
}

void cw__wdb_known_add(cw_wdb_t *db, const char *station) { wset_get(&db->known, station, 0, 1, NULL); }
void cw__wdb_known_clear(cw_wdb_t *db) { wset_clear(&db->known); }

static int wbuf_add(cw_wbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + n + 1) ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) return -ENOMEM;
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

/* ------------------------------------------------------------- connection */

int cw__wdb_init(cw_wdb_t *db, const cw_env_t *env) {
  memset(db, 0, sizeof(*db));
  db->env = env;
  db->backoff_ms = CW_WDB_BACKOFF_MIN_MS;
  pthread_mutex_init(&db->cancel_mu, NULL);
  return cw_copy_init(&db->scratch, 1 << 16);
}

void cw__wdb_abandon(cw_wdb_t *db) {
  char err[256];
  atomic_store(&db->abandon, 1);
  pthread_mutex_lock(&db->cancel_mu);
  if (db->cancel && !PQcancel(db->cancel, err, sizeof(err)))
    cw_log(CW_LOG_WARN, "writer: cancelling the statement in progress: %s", err);
  pthread_mutex_unlock(&db->cancel_mu);
}

/* Shutdown guard. A statement that hangs (a lock held for minutes, a server
 * that stopped answering) would hold the writer, then the workers, then the
 * whole stop sequence past shutdown_timeout_s, where main.c exits 1 and the
 * rings are lost. So once the daemon has been stopping for ABANDON_PCT of the
 * timeout with the writer still running, give up on the database: cancel
 * the statement (every 500 ms, in case the next one hangs too) and let the
 * writer spool what is left. A cancelled COPY is rolled back whole, so the
 * spooled batch replays without duplicates. */
#define ABANDON_PCT 40

void *cw__wdb_guard(void *arg) {
  cw_wdb_t *db = arg;
  const cw_config_t *cfg = db->env->cfg;
  int64_t budget = 1000LL * (cfg->shutdown_timeout_s > 0 ? cfg->shutdown_timeout_s : 10);
  int64_t since = 0, next_cancel = 0;
  struct timespec nap = {0, 50 * 1000000L};
  while (!atomic_load(&db->guard_stop)) {
    int64_t now = cw_mono_ms();
    if (cw_env_stopping(db->env)) {
      if (!since) since = now;
      if (now - since >= budget * ABANDON_PCT / 100 && now >= next_cancel) {
        if (!atomic_load(&db->abandon))
          cw_log(CW_LOG_WARN, "writer: the database is holding up the shutdown; cancelling, spooling the rest");
        cw__wdb_abandon(db);
        next_cancel = now + 500;
      }
    }
    nanosleep(&nap, NULL);
  }
  return NULL;
}

static void cancel_set(cw_wdb_t *db, PGcancel *c) {
  pthread_mutex_lock(&db->cancel_mu);
  if (db->cancel) PQfreeCancel(db->cancel);
  db->cancel = c;
  pthread_mutex_unlock(&db->cancel_mu);
}

void cw__wdb_free(cw_wdb_t *db) {
  free(db->known.e);
  free(db->bsock.e);
  free(db->bst.e);
  free(db->dirty.e);
  free(db->a1.p);
  free(db->a2.p);
  free(db->a3.p);
  free(db->rows);
  cw_copy_free(&db->scratch);
  cancel_set(db, NULL);
  pthread_mutex_destroy(&db->cancel_mu);
  memset(db, 0, sizeof(*db));
}

static void quiet(void *arg, const char *msg) {
  (void)arg;
  cw_log(CW_LOG_DEBUG, "writer: server: %s", msg);
}

/* Defaults come before dbname, so a conninfo string may override them
 * (libpq processes keywords in order; the last value wins). */
static const char *const conn_keys[] = {"application_name", "connect_timeout", "keepalives_idle",
                                        "keepalives_interval", "keepalives_count", "dbname", NULL};

static void conn_vals(cw_wdb_t *db, const char *vals[7]) {
  vals[0] = "chargewatchd";
  vals[1] = "5";
  vals[2] = "30"; /* notice a vanished server in ~1 min, not the kernel's 2 h */
  vals[3] = "10";
  vals[4] = "3";
  vals[5] = db->env->cfg->pg_conninfo;
  vals[6] = NULL;
}

static void conn_ready(cw_wdb_t *db) {
  PQsetNoticeProcessor(db->conn, quiet, NULL);
  cancel_set(db, PQgetCancel(db->conn));
  db->temp_table = 0;
  db->retry_at_ms = 0;
}

int cw__wdb_connect_blocking(cw_wdb_t *db) {
  const char *vals[7];
  conn_vals(db, vals);
  cw__wdb_close(db);
  db->conn = PQconnectdbParams(conn_keys, vals, 1);
  if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
    cw_log(CW_LOG_DEBUG, "writer: connect: %s", db->conn ? PQerrorMessage(db->conn) : "out of memory");
    cw__wdb_close(db);
    return -EIO;
  }
  conn_ready(db);
  return 0;
}

int cw__wdb_poll_connect(cw_wdb_t *db, int64_t now) {
  if (db->conn && !db->connecting) return 0; /* connected (or being set up) */
  if (atomic_load(&db->abandon)) return 0;
  if (!db->conn) {
    const char *vals[7];
    if (now < db->retry_at_ms) return 0;
    conn_vals(db, vals);
    db->conn = PQconnectStartParams(conn_keys, vals, 1);
    if (!db->conn || PQstatus(db->conn) == CONNECTION_BAD) goto failed;
    db->connecting = 1;
    db->poll_state = PGRES_POLLING_WRITING;
    db->connect_started_ms = now;
  }
  for (int i = 0; i < 32; i++) {
    struct pollfd p = {PQsocket(db->conn), db->poll_state == PGRES_POLLING_WRITING ? POLLOUT : POLLIN, 0};
    if (p.fd < 0) goto failed;
    if (poll(&p, 1, 0) <= 0) break; /* not ready yet: come back on the next tick */
    db->poll_state = PQconnectPoll(db->conn);
    if (db->poll_state == PGRES_POLLING_OK) {
      db->connecting = 0;
      conn_ready(db);
      return 1;
    }
    if (db->poll_state == PGRES_POLLING_FAILED) goto failed;
  }
  if (now - db->connect_started_ms < CONNECT_TIMEOUT_MS) return 0;
failed:
  cw_log(CW_LOG_DEBUG, "writer: reconnect: %s", db->conn ? PQerrorMessage(db->conn) : "out of memory");
  cw__wdb_close(db);
  cw__wdb_down(db, NULL);
  return 0;
}

void cw__wdb_close(cw_wdb_t *db) {
  cancel_set(db, NULL);
  if (db->conn) PQfinish(db->conn);
  db->conn = NULL;
  db->ready = 0;
  db->connecting = 0;
}

void cw__wdb_down(cw_wdb_t *db, const char *what) {
  if (what) {
    const char *sep = db->last_err[0] ? ": " : "";
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
      cw_log(CW_LOG_WARN, "writer: %s failed%s%s; retrying in %d ms", what, sep, db->last_err,
             db->backoff_ms);
    else
      cw_log(CW_LOG_WARN, "writer: database connection lost during %s%s%s; spooling, reconnecting",
             what, sep, db->last_err);
  }
  db->last_err[0] = 0;
  /* Always start over on a fresh connection: libpq may still report
   * CONNECTION_OK after a failed statement on a session the server is
   * terminating (57P01 comes as an error result before the EOF), and a kept
   * connection left ready = 1, so /healthz said 200 through an outage. A reconnect after a
   * real temporary error (statement timeout, lock) costs one session setup. */
  cw__wdb_close(db);
  atomic_store(&db->env->m->db_connected, 0);
  db->retry_at_ms = cw_mono_ms() + db->backoff_ms;
  db->backoff_ms = db->backoff_ms * 2 > CW_WDB_BACKOFF_MAX_MS ? CW_WDB_BACKOFF_MAX_MS : db->backoff_ms * 2;
}

int cw__wdb_exec(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  PQclear(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -EIO;
}

/* Temporary unless the server blamed the data (class 22 data exception, class
 * 23 integrity violation). Anything else - connection, resources (53),
 * shutdown (57P), serialization (40), even permissions (42) - is retried, so a
 * misconfiguration spools instead of dead-lettering good rows. */
static int classify(PGconn *c, const PGresult *r, char *msg, size_t cap) {
  const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  snprintf(msg, cap, "%s%s%s", code ? code : "", code ? " " : "", m ? m : PQerrorMessage(c));
  if (PQstatus(c) != CONNECTION_OK || !code) return CW_WDB_TEMP;
  if (!strcmp(code, "23505")) return CW_WDB_DUP;
  if (!strncmp(code, "22", 2) || !strncmp(code, "23", 2)) return CW_WDB_PERM;
  return CW_WDB_TEMP;
}

/* Run a statement; on failure classify it. */
static int run(cw_wdb_t *db, const char *sql, int n, const char *const *vals, char *msg, size_t cap) {
  PGresult *r = n ? PQexecParams(db->conn, sql, n, NULL, vals, NULL, NULL, 0) : PQexec(db->conn, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? CW_WDB_OK : classify(db->conn, r, msg, cap);
  PQclear(r);
  return rc;
}

static void rollback(cw_wdb_t *db) {
  if (PQstatus(db->conn) == CONNECTION_OK) PQclear(PQexec(db->conn, "ROLLBACK"));
}

/* ------------------------------------------------------------- migrations */

int cw__wdb_migrate(PGconn *c) {
  for (size_t i = 0; i < cw_migrations_count && cw_migrations[i].name; i++) {
    const char *name = cw_migrations[i].name;
    const char *p[1] = {name};
    PGresult *r;
    int done;
    if (cw__wdb_exec(c, "BEGIN") || cw__wdb_exec(c, "SELECT pg_advisory_xact_lock(hashtext('" ADVISORY_KEY "'))") ||
        cw__wdb_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY,"
                        " applied_at timestamptz NOT NULL DEFAULT now())"))
      goto fail;
    r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE name = $1", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      PQclear(r);
      goto fail;
    }
    done = PQntuples(r) > 0;
    PQclear(r);
    if (!done) {
      if (cw__wdb_exec(c, cw_migrations[i].sql)) goto fail;
      r = PQexecParams(c, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, NULL, p, NULL, NULL, 0);
      if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        PQclear(r);
        goto fail;
      }
      PQclear(r);
    }
    if (cw__wdb_exec(c, "COMMIT")) goto fail;
    if (!done) cw_log(CW_LOG_INFO, "writer: applied migration %s", name);
    continue;
  fail:
    cw_log(CW_LOG_ERROR, "writer: migration %s: %s", name, PQerrorMessage(c));
    cw__wdb_exec(c, "ROLLBACK");
    return PQstatus(c) == CONNECTION_OK ? -EPROTO : -EIO;
  }
  return 0;
}

/* ------------------------------------------------------------- readings */

static int collect_row(void *ctx, const cw_reading_t *r) {
  cw_wdb_t *db = ctx;
  if (db->nrows == db->rows_cap) {
    size_t ncap = db->rows_cap ? db->rows_cap * 2 : 8192;
    cw_reading_t *n = realloc(db->rows, ncap * sizeof(*n));
    if (!n) return -ENOMEM;
    db->rows = n;
    db->rows_cap = ncap;
  }
  db->rows[db->nrows++] = *r;
  return 0;
}

/* Per-batch keys: max ts per socket (bsock), and the stations the writer does
 * not know yet (bst) as the array literal a1 for SQL_REGISTER. */
static int batch_keys(cw_wdb_t *db, const cw_reading_t *rows, size_t n, int *nreg) {
  char tmp[64];
  wset_clear(&db->bsock);
  wset_clear(&db->bst);
  db->a1.len = 0;
  *nreg = 0;
  for (size_t i = 0; i < n; i++) {
    int created;
    cw_wkey_t *k = wset_get(&db->bsock, rows[i].station, rows[i].socket, 1, NULL);
    if (!k) return -ENOMEM;
    if (rows[i].ts_ms > k->ts_ms) k->ts_ms = rows[i].ts_ms;
    if (wset_get(&db->known, rows[i].station, 0, 0, NULL)) continue;
    if (!wset_get(&db->bst, rows[i].station, 0, 1, &created)) return -ENOMEM;
    (*nreg) += created;
  }
  /* stations to register: {"A","B"} (codes are [A-Za-z0-9_-]: no escaping) */
  if (wbuf_add(&db->a1, "{", 1)) return -ENOMEM;
  for (size_t i = 0, first = 1; i < db->bst.cap; i++) {
    if (!db->bst.e[i].used) continue;
    int m = snprintf(tmp, sizeof(tmp), "%s\"%s\"", first ? "" : ",", db->bst.e[i].station);
    if (wbuf_add(&db->a1, tmp, (size_t)m)) return -ENOMEM;
    first = 0;
  }
  if (wbuf_add(&db->a1, "}", 1)) return -ENOMEM;
  return 0;
}

/* Array literals for the sockets statement from a set: stations in a2,
 * sockets in a3, max ts (ms) in ts. */
static int socket_arrays(cw_wdb_t *db, const cw_wset_t *set, cw_wbuf_t *ts) {
  char tmp[64];
  int first = 1;
  db->a2.len = db->a3.len = ts->len = 0;
  if (wbuf_add(&db->a2, "{", 1) || wbuf_add(&db->a3, "{", 1) || wbuf_add(ts, "{", 1)) return -ENOMEM;
  for (size_t i = 0; i < set->cap; i++) {
    const cw_wkey_t *k = &set->e[i];
    if (!k->used) continue;
    int m = snprintf(tmp, sizeof(tmp), "%s\"%s\"", first ? "" : ",", k->station);
    if (wbuf_add(&db->a2, tmp, (size_t)m)) return -ENOMEM;
    m = snprintf(tmp, sizeof(tmp), "%s%u", first ? "" : ",", k->socket);
    if (wbuf_add(&db->a3, tmp, (size_t)m)) return -ENOMEM;
    m = snprintf(tmp, sizeof(tmp), "%s%lld", first ? "" : ",", (long long)k->ts_ms);
    if (wbuf_add(ts, tmp, (size_t)m)) return -ENOMEM;
    first = 0;
  }
  if (wbuf_add(&db->a2, "}", 1) || wbuf_add(&db->a3, "}", 1) || wbuf_add(ts, "}", 1)) return -ENOMEM;
  return 0;
}

static const char SQL_REGISTER[] =
    "INSERT INTO stations (code) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING";
/* Only sockets of registered stations (sockets.station is a foreign key):
 * the join keeps a deleted or unregistered station from failing the batch. */
static const char SQL_SOCKETS_UPSERT[] =
    "INSERT INTO sockets (station, socket, last_ts)"
    " SELECT u.s, u.k, timestamptz 'epoch' + u.t * interval '1 millisecond'"
    " FROM unnest($1::text[], $2::smallint[], $3::bigint[]) AS u(s, k, t)"
    " JOIN stations st ON st.code = u.s WHERE u.k BETWEEN 1 AND 255"
    " ON CONFLICT (station, socket) DO UPDATE SET last_ts = greatest(sockets.last_ts, excluded.last_ts)";
static const char SQL_SOCKETS_UPDATE[] =
    "UPDATE sockets s SET last_ts = greatest(s.last_ts, timestamptz 'epoch' + u.t * interval '1 millisecond')"
    " FROM unnest($1::text[], $2::smallint[], $3::bigint[]) AS u(s, k, t)"
    " WHERE s.station = u.s AND s.socket = u.k";

static int copy_data(cw_wdb_t *db, const char *sql, const uint8_t *buf, size_t len, uint64_t *rows,
                     char *msg, size_t cap) {
  PGresult *r = PQexec(db->conn, sql);
  int rc;
  if (PQresultStatus(r) != PGRES_COPY_IN) {
    rc = classify(db->conn, r, msg, cap);
    PQclear(r);
    return rc == CW_WDB_OK ? CW_WDB_TEMP : rc;
  }
  PQclear(r);
  /* In 1 MiB pieces so a large replayed buffer does not sit twice in memory. */
  for (size_t off = 0; off < len;) {
    size_t n = len - off > (1u << 20) ? 1u << 20 : len - off;
    if (PQputCopyData(db->conn, (const char *)buf + off, (int)n) != 1) break;
    off += n;
  }
  PQputCopyEnd(db->conn, NULL);
  r = PQgetResult(db->conn);
  if (PQresultStatus(r) == PGRES_COMMAND_OK) {
    rc = CW_WDB_OK;
    *rows = strtoull(PQcmdTuples(r), NULL, 10);
  } else {
    rc = classify(db->conn, r, msg, cap);
    if (rc == CW_WDB_OK) rc = CW_WDB_TEMP;
  }
  PQclear(r);
  while ((r = PQgetResult(db->conn)) != NULL) PQclear(r);
  return rc;
}

/* One transaction: register stations, COPY (directly, or through a temp table
 * with ON CONFLICT DO NOTHING when idem), COMMIT; then note the sockets'
 * max ts for cw__wdb_flush_sockets. */
static int attempt(cw_wdb_t *db, const uint8_t *buf, size_t len, const cw_reading_t *rows, size_t n,
                   int idem, uint64_t *stored, char *msg, size_t cap) {
  int nreg, rc = CW_WDB_TEMP;
  int autoreg = db->env->cfg->auto_register;
  *stored = 0;
  if (batch_keys(db, rows, n, &nreg)) {
    snprintf(msg, cap, "out of memory");
    goto out;
  }
  if ((rc = run(db, "BEGIN", 0, NULL, msg, cap)) != CW_WDB_OK) goto out;
  if (autoreg && nreg) {
    const char *v[1] = {db->a1.p};
    if ((rc = run(db, SQL_REGISTER, 1, v, msg, cap)) != CW_WDB_OK) goto abort;
  }
  if (!idem) {
    rc = copy_data(db, "COPY readings (" CW_COPY_COLUMNS ") FROM STDIN (FORMAT binary)", buf, len,
                   stored, msg, cap);
  } else {
    uint64_t staged = 0;
    if (!db->temp_table) {
      rc = run(db, "CREATE TEMP TABLE IF NOT EXISTS cw_readings_in (LIKE readings) ON COMMIT DELETE ROWS",
               0, NULL, msg, cap);
      if (rc != CW_WDB_OK) goto abort;
    }
    rc = copy_data(db, "COPY cw_readings_in (" CW_COPY_COLUMNS ") FROM STDIN (FORMAT binary)", buf, len,
                   &staged, msg, cap);
    if (rc == CW_WDB_OK) {
      PGresult *r = PQexec(db->conn, "INSERT INTO readings (" CW_COPY_COLUMNS ") SELECT " CW_COPY_COLUMNS
                                     " FROM cw_readings_in ON CONFLICT DO NOTHING");
      if (PQresultStatus(r) == PGRES_COMMAND_OK) *stored = strtoull(PQcmdTuples(r), NULL, 10);
      else rc = classify(db->conn, r, msg, cap);
      PQclear(r);
    }
  }
  if (rc != CW_WDB_OK) goto abort;
  if ((rc = run(db, "COMMIT", 0, NULL, msg, cap)) != CW_WDB_OK) goto abort;
  if (idem) db->temp_table = 1;
  if (autoreg)
    for (size_t i = 0; i < db->bst.cap; i++)
      if (db->bst.e[i].used) cw__wdb_known_add(db, db->bst.e[i].station);
  for (size_t i = 0; i < db->bsock.cap; i++) {
    cw_wkey_t *k = &db->bsock.e[i], *t;
    if (!k->used) continue;
    t = wset_get(&db->dirty, k->station, k->socket, 1, NULL);
    if (t && k->ts_ms > t->ts_ms) t->ts_ms = k->ts_ms;
  }
  db->backoff_ms = CW_WDB_BACKOFF_MIN_MS;
  return rc;
abort:
  rollback(db);
  *stored = 0;
out:
  return rc;
}

int cw__wdb_flush_sockets(cw_wdb_t *db) {
  char msg[256] = "";
  cw_wbuf_t ts = {0};
  int rc = CW_WDB_TEMP;
  if (!db->dirty.len) return CW_WDB_OK;
  if (socket_arrays(db, &db->dirty, &ts)) goto out;
  const char *v[3] = {db->a2.p, db->a3.p, ts.p};
  rc = run(db, db->env->cfg->auto_register ? SQL_SOCKETS_UPSERT : SQL_SOCKETS_UPDATE, 3, v, msg, sizeof(msg));
  if (rc == CW_WDB_OK) {
    wset_clear(&db->dirty);
  } else {
    /* A data error here would repeat forever: drop the hints, the unique
     * index keeps replays correct without them. */
    if (rc != CW_WDB_TEMP) {
      cw_log(CW_LOG_WARN, "writer: updating sockets.last_ts: %s", msg);
      wset_clear(&db->dirty);
      rc = CW_WDB_OK;
    } else {
      remember(db, msg);
      rc = CW_WDB_TEMP;
    }
  }
out:
  free(ts.p);
  return rc;
}

static void reject_row(const cw_env_t *env, const cw_reading_t *r, const char *why) {
  char js[320];
  int n = snprintf(js, sizeof(js), "{\"ts\":%lld,\"station\":\"%s\",\"socket\":%u,\"v\":%g,\"a\":%g,"
                   "\"w\":%g,\"wh\":%g,\"t\":%g,\"t_amb\":%g,\"have\":%u}",
                   (long long)r->ts_ms, r->station, r->socket, r->v, r->a, r->w, r->wh, r->t,
                   r->t_amb, r->have);
  if (n < 0 || (size_t)n >= sizeof(js)) n = (int)strlen(js);
  cw_log(CW_LOG_WARN, "writer: database refused %s/%u ts %lld: %s", r->station, r->socket,
         (long long)r->ts_ms, why);
  cw_env_reject(env, CW_REJ_DB_REJECTED, -1, why, r->station, strlen(r->station), js, (size_t)n);
}

/* Encode rows and attempt them; unique violations go the idempotent way. */
static int attempt_rows(cw_wdb_t *db, const cw_reading_t *rows, size_t n, uint64_t *stored, char *msg,
                        size_t cap) {
  cw_copy_reset(&db->scratch);
  for (size_t i = 0; i < n; i++)
    if (cw_copy_add(&db->scratch, &rows[i])) return CW_WDB_TEMP;
  if (cw_copy_finish(&db->scratch)) return CW_WDB_TEMP;
  int rc = attempt(db, db->scratch.buf, db->scratch.len, rows, n, 0, stored, msg, cap);
  if (rc == CW_WDB_DUP) rc = attempt(db, db->scratch.buf, db->scratch.len, rows, n, 1, stored, msg, cap);
  return rc;
}

/* Halve until the refused rows stand alone; store everything else. */
static int bisect(cw_wdb_t *db, const cw_reading_t *rows, size_t n, uint64_t *stored) {
  char msg[256];
  uint64_t got = 0;
  int rc = attempt_rows(db, rows, n, &got, msg, sizeof(msg));
  if (rc == CW_WDB_OK) {
    *stored += got;
    return rc;
  }
  if (rc != CW_WDB_PERM) return CW_WDB_TEMP;
  if (n == 1) {
    reject_row(db->env, rows, msg);
    return CW_WDB_OK;
  }
  rc = bisect(db, rows, n / 2, stored);
  if (rc != CW_WDB_OK) return rc;
  return bisect(db, rows + n / 2, n - n / 2, stored);
}

int cw__wdb_store_buf(cw_wdb_t *db, const uint8_t *buf, size_t len, uint64_t *rows) {
  char msg[256];
  long n;
  int rc;
  *rows = 0;
  db->nrows = 0;
  n = cw_copy_parse(buf, len, collect_row, db);
  if (n < 0) {
    /* The spool CRC-checks its records, so this is a bug, not the disk. */
    cw_log(CW_LOG_ERROR, "writer: dropping a malformed COPY buffer of %zu bytes (%ld)", len, n);
    return CW_WDB_OK;
  }
  if (n == 0) return CW_WDB_OK;
  rc = attempt(db, buf, len, db->rows, db->nrows, 0, rows, msg, sizeof(msg));
  if (rc == CW_WDB_DUP) rc = attempt(db, buf, len, db->rows, db->nrows, 1, rows, msg, sizeof(msg));
  if (rc == CW_WDB_PERM) {
    cw_log(CW_LOG_WARN, "writer: batch of %zu rows refused (%s); isolating the rows", db->nrows, msg);
    /* bisect re-encodes into scratch; db->rows stays valid throughout */
    rc = bisect(db, db->rows, db->nrows, rows);
  }
  if (rc != CW_WDB_OK && rc != CW_WDB_TEMP) rc = CW_WDB_TEMP;
  if (rc == CW_WDB_TEMP) remember(db, msg);
  return rc;
}

/* ------------------------------------------------------------- alerts */

/* Timestamps per event: raised -> opened_at, escalated -> escalated_at,
 * cleared -> cleared_at, acknowledged -> acked_at/by, closed -> closed_at/by.
 * A closed row stays closed; severity, threshold, message and unit follow
 * the latest raise/escalation; peak_value is the largest value in the
 * current unit (an escalation by another rule, C -> C/s, starts afresh).
 * Replaying an event is harmless. */
static const char SQL_ALERT_UPSERT[] =
    "INSERT INTO alerts AS a (id, station, socket, kind, severity, state, opened_at, escalated_at,"
    " cleared_at, acked_at, acked_by, closed_at, closed_by, peak_value, threshold, message, unit, updated_at)"
    " SELECT $1, $2, $3, $4, coalesce($5, 'warning'), $6, e.ts,"
    "  CASE WHEN $7 = 'escalated' THEN e.ts END, CASE WHEN $7 = 'cleared' THEN e.ts END,"
    "  CASE WHEN $7 = 'acknowledged' THEN e.ts END, CASE WHEN $7 = 'acknowledged' THEN $13 END,"
    "  CASE WHEN $7 = 'closed' THEN e.ts END, CASE WHEN $7 = 'closed' THEN $13 END,"
    "  $9, $10, $11, $12, now()"
    " FROM (SELECT timestamptz 'epoch' + $8 * interval '1 millisecond' AS ts) e"
    " ON CONFLICT (id) DO UPDATE SET"
    "  state = CASE WHEN a.state = 'closed' THEN 'closed' ELSE excluded.state END,"
    "  severity = CASE WHEN $5 IS NOT NULL AND $7 IN ('raised', 'escalated') THEN excluded.severity"
    "   ELSE a.severity END,"
    "  opened_at = least(a.opened_at, excluded.opened_at),"
    "  escalated_at = coalesce(excluded.escalated_at, a.escalated_at),"
    "  cleared_at = CASE WHEN $7 = 'raised' THEN NULL ELSE coalesce(excluded.cleared_at, a.cleared_at) END,"
    "  acked_at = coalesce(excluded.acked_at, a.acked_at),"
    "  acked_by = coalesce(excluded.acked_by, a.acked_by),"
    "  closed_at = coalesce(excluded.closed_at, a.closed_at),"
    "  closed_by = coalesce(excluded.closed_by, a.closed_by),"
    "  peak_value = CASE WHEN $7 NOT IN ('raised', 'escalated') THEN a.peak_value"
    "   WHEN a.unit IS DISTINCT FROM excluded.unit THEN excluded.peak_value"
    "   ELSE greatest(a.peak_value, excluded.peak_value) END,"
    "  threshold = CASE WHEN $7 IN ('raised', 'escalated') THEN excluded.threshold ELSE a.threshold END,"
    "  message = CASE WHEN $7 IN ('raised', 'escalated') THEN excluded.message ELSE a.message END,"
    "  unit = CASE WHEN $7 IN ('raised', 'escalated') THEN excluded.unit ELSE a.unit END,"
    "  updated_at = now()";
static const char SQL_ALERT_EVENT[] =
    "INSERT INTO alert_events (alert_id, ts, event, severity, value, detail)"
    " VALUES ($1, timestamptz 'epoch' + $8 * interval '1 millisecond', $7, $5, $9,"
    "  jsonb_build_object('state', $6, 'threshold', $10, 'unit', $12, 'message', $11, 'by', $13,"
    "   'recv_ts', timestamptz 'epoch' + $14 * interval '1 millisecond'))"
    " ON CONFLICT DO NOTHING";

#define TEXTOID 25
#define INT8OID 20
#define INT2OID 21
#define FLOAT8OID 701
static const Oid alert_types[14] = {INT8OID, TEXTOID, INT2OID, TEXTOID,   TEXTOID, TEXTOID, TEXTOID,
                                    INT8OID, FLOAT8OID, FLOAT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID};

static int alert_one(cw_wdb_t *db, const cw_alert_event_t *ev, char *msg, size_t cap) {
  char id[24], sock[8], ts[24], val[32], thr[32], recv[24];
  const char *v[14];
  snprintf(id, sizeof(id), "%lld", (long long)ev->id);
  snprintf(sock, sizeof(sock), "%u", ev->socket);
  snprintf(ts, sizeof(ts), "%lld", (long long)ev->ts_ms);
  snprintf(val, sizeof(val), "%.17g", ev->value);
  snprintf(thr, sizeof(thr), "%.17g", ev->threshold);
  snprintf(recv, sizeof(recv), "%lld", (long long)(ev->recv_ms ? ev->recv_ms : ev->ts_ms));
  v[0] = id;
  v[1] = ev->station;
  v[2] = sock;
  v[3] = cw_kind_name(ev->kind);
  v[4] = ev->severity == CW_SEV_NONE ? NULL : cw_severity_name(ev->severity);
  v[5] = cw_alert_state_name(ev->state);
  v[6] = cw_event_name(ev->event);
  v[7] = ts;
  v[8] = val;
  v[9] = thr;
  v[10] = ev->message;
  v[11] = ev->unit;
  v[12] = ev->by[0] ? ev->by : NULL;
  v[13] = recv;
  for (int k = 0; k < 2; k++) {
    PGresult *r = PQexecParams(db->conn, k ? SQL_ALERT_EVENT : SQL_ALERT_UPSERT, 14, alert_types, v,
                               NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    int rc = ok ? CW_WDB_OK : classify(db->conn, r, msg, cap);
    PQclear(r);
    if (!ok) return rc == CW_WDB_DUP ? CW_WDB_PERM : rc;
  }
  return CW_WDB_OK;
}

int cw__wdb_store_alerts(cw_wdb_t *db, const cw_alert_event_t *v, size_t n) {
  char msg[256] = "";
  int rc = run(db, "BEGIN", 0, NULL, msg, sizeof(msg));
  for (size_t i = 0; rc == CW_WDB_OK && i < n; i++) rc = alert_one(db, &v[i], msg, sizeof(msg));
  if (rc == CW_WDB_OK) rc = run(db, "COMMIT", 0, NULL, msg, sizeof(msg));
  if (rc == CW_WDB_OK) {
    db->backoff_ms = CW_WDB_BACKOFF_MIN_MS;
    return rc;
  }
  rollback(db);
  if (rc != CW_WDB_PERM) {
    remember(db, msg);
    return CW_WDB_TEMP;
  }
  /* Some event is refused for its content: one transaction each, skip it. */
  for (size_t i = 0; i < n; i++) {
    rc = run(db, "BEGIN", 0, NULL, msg, sizeof(msg));
    if (rc == CW_WDB_OK) rc = alert_one(db, &v[i], msg, sizeof(msg));
    if (rc == CW_WDB_OK) rc = run(db, "COMMIT", 0, NULL, msg, sizeof(msg));
    if (rc == CW_WDB_OK) continue;
    rollback(db);
    if (rc != CW_WDB_PERM) return CW_WDB_TEMP; /* earlier ones are stored; replay is idempotent */
    cw_log(CW_LOG_ERROR, "writer: alert %lld event %s refused by the database: %s", (long long)v[i].id,
           cw_event_name(v[i].event), msg);
  }
  return CW_WDB_OK;
}
