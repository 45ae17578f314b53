/* db_conn.c - the writer's PostgreSQL connection: connecting (blocking at
 * start, non-blocking afterwards so the thread keeps spooling), the back-off
 * after a temporary failure, running a statement and sorting its errors
 * into temporary (retry, spool) and permanent (the data: dead-letter it),
 * and the guard thread that cancels a statement holding up a shutdown. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "text.h"

#define CONNECT_TIMEOUT_MS 10000 /* a non-blocking connect attempt gives up after this */

/* A temporary failure's server message, logged once by cw__wdb_down. */
void cw__wdb_remember(cw_wdb_t *db, const char *msg) {
  snprintf(db->last_err, sizeof db->last_err, "%s", msg);
  size_t n = strlen(db->last_err);
  while (n && (db->last_err[n - 1] == '\n' || db->last_err[n - 1] == ' ')) db->last_err[--n] = 0;
}

/* ------------------------------------------------------------- connection */

int cw__wdb_init(cw_wdb_t *db, const cw_env_t *env, const char *conninfo) {
  memset(db, 0, sizeof(*db));
  db->env = env;
  db->conninfo = conninfo ? conninfo : env->cfg->pg_conninfo;
  db->backoff_ms = CW_WDB_BACKOFF_MIN_MS;
  pthread_mutex_init(&db->cancel_mu, NULL);
  pthread_mutex_init(&db->share_mu, NULL);
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
  pthread_mutex_destroy(&db->share_mu);
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
  vals[5] = db->conninfo;
  vals[6] = NULL;
}

static void conn_ready(cw_wdb_t *db) {
  PQsetNoticeProcessor(db->conn, quiet, NULL);
  cancel_set(db, PQgetCancel(db->conn));
  db->temp_table = 0;
  db->retry_at_ms = 0;
}

/* The server refused us (authentication, authorisation, no such role or
 * database): not an outage, retrying will not help. libpq gives connection
 * errors as text only: the server's FATAL messages (English, lc_messages C). */
int cw__wdb_refused(const char *msg) {
  static const char *const words[] = {"password authentication failed", "authentication failed",
                                      "no pg_hba.conf entry", "pg_hba.conf rejects",
                                      "does not exist", "permission denied",
                                      "no password supplied", "password is required"};
  for (size_t i = 0; msg && i < sizeof words / sizeof words[0]; i++)
    if (strstr(msg, words[i])) return 1;
  return 0;
}

static void set_refusal(cw_wdb_t *db, const char *why) {
  pthread_mutex_lock(&db->share_mu);
  snprintf(db->refusal, sizeof db->refusal, "%s", why);
  pthread_mutex_unlock(&db->share_mu);
}

int cw__wdb_refusal(cw_wdb_t *db, char *why, size_t cap) {
  pthread_mutex_lock(&db->share_mu);
  int on = db->refusal[0] != 0;
  if (cap) snprintf(why, cap, "%s", db->refusal);
  pthread_mutex_unlock(&db->share_mu);
  return on;
}

/* The server's message on one line; a conninfo never appears in it, but a
 * "password=..." would be cut out all the same. */
static void refused_log(cw_wdb_t *db, const char *when) {
  char line[512];
  const char *msg = db->conn ? PQerrorMessage(db->conn) : "";
  snprintf(line, sizeof line, "%s", msg);
  for (char *p = line; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  char *pw = strstr(line, "password=");
  if (pw) snprintf(pw, sizeof line - (size_t)(pw - line), "password=***");
  size_t n = strlen(line);
  while (n && line[n - 1] == ' ') line[--n] = 0;
  cw_log(CW_LOG_ERROR, "writer: %s: the database refused the connection: %s", when, line);
  set_refusal(db, line);
}

int cw__wdb_connect_blocking(cw_wdb_t *db) {
  const char *vals[7];
  conn_vals(db, vals);
  cw__wdb_close(db);
  db->conn = PQconnectdbParams(conn_keys, vals, 1);
  if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
    if (db->conn && cw__wdb_refused(PQerrorMessage(db->conn))) {
      refused_log(db, "start");
      cw__wdb_close(db);
      return -EACCES;
    }
    cw_log(CW_LOG_DEBUG, "writer: connect: %s", db->conn ? PQerrorMessage(db->conn) : "out of memory");
    cw__wdb_close(db);
    return -EIO;
  }
  set_refusal(db, "");
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
      if (db->refused) cw_log(CW_LOG_INFO, "writer: the database accepts the connection again");
      db->refused = 0;
      set_refusal(db, "");
      conn_ready(db);
      return 1;
    }
    if (db->poll_state == PGRES_POLLING_FAILED) goto failed;
  }
  if (now - db->connect_started_ms < CONNECT_TIMEOUT_MS) return 0;
failed:
  if (db->conn && cw__wdb_refused(PQerrorMessage(db->conn))) {
    if (!db->refused) refused_log(db, "reconnect"); /* once per refusal spell */
    db->refused = 1;
  } else {
    cw_log(CW_LOG_DEBUG, "writer: reconnect: %s", db->conn ? PQerrorMessage(db->conn) : "out of memory");
  }
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
  if (db->conninfo == db->env->cfg->pg_conninfo) /* the gauge is the main database's */
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
int cw__wdb_classify(PGconn *c, const PGresult *r, char *msg, size_t cap) {
  const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  snprintf(msg, cap, "%s%s%s", code ? code : "", code ? " " : "", m ? m : PQerrorMessage(c));
  if (PQstatus(c) != CONNECTION_OK || !code) return CW_WDB_TEMP;
  if (!strcmp(code, "23505")) return CW_WDB_DUP;
  if (!strncmp(code, "22", 2) || !strncmp(code, "23", 2)) return CW_WDB_PERM;
  return CW_WDB_TEMP;
}

/* Run a statement; on failure classify it. */
int cw__wdb_run(cw_wdb_t *db, const char *sql, int n, const char *const *vals, char *msg, size_t cap) {
  PGresult *r = n ? PQexecParams(db->conn, sql, n, NULL, vals, NULL, NULL, 0) : PQexec(db->conn, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? CW_WDB_OK : cw__wdb_classify(db->conn, r, msg, cap);
  PQclear(r);
  return rc;
}

void cw__wdb_rollback(cw_wdb_t *db) {
  if (PQstatus(db->conn) == CONNECTION_OK) PQclear(PQexec(db->conn, "ROLLBACK"));
}

