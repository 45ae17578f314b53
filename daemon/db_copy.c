/* db_copy.c - storing readings: a finished binary COPY batch with
 * sockets.last_ts kept current and new stations registered, the idempotent
 * fallback for replayed batches, and bisection that quarantines the rows
 * the database refuses (dead-letter file). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

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
  cw__wset_clear(&db->bsock);
  cw__wset_clear(&db->bst);
  db->a1.len = 0;
  *nreg = 0;
  const char *prev = NULL; /* a station message's rows come together */
  for (size_t i = 0; i < n; i++) {
    int created;
    cw_wkey_t *k = cw__wset_get(&db->bsock, rows[i].station, rows[i].socket, 1, NULL);
    if (!k) return -ENOMEM;
    if (rows[i].ts_ms > k->ts_ms) k->ts_ms = rows[i].ts_ms;
    if (prev && strcmp(prev, rows[i].station) == 0) continue; /* looked up just before */
    prev = rows[i].station;
    if (cw__wset_get(&db->known, rows[i].station, 0, 0, NULL)) continue;
    if (!cw__wset_get(&db->bst, rows[i].station, 0, 1, &created)) return -ENOMEM;
    (*nreg) += created;
  }
  /* stations to register: {"A","B"} (codes are [A-Za-z0-9_-]: no escaping) */
  if (cw__wbuf_add(&db->a1, "{", 1)) return -ENOMEM;
  for (size_t i = 0, first = 1; i < db->bst.cap; i++) {
    if (!db->bst.e[i].used) continue;
    int m = snprintf(tmp, sizeof(tmp), "%s\"%s\"", first ? "" : ",", db->bst.e[i].station);
    if (cw__wbuf_add(&db->a1, tmp, (size_t)m)) return -ENOMEM;
    first = 0;
  }
  if (cw__wbuf_add(&db->a1, "}", 1)) return -ENOMEM;
  return 0;
}

/* Array literals for the sockets statement from a set: stations in a2,
 * sockets in a3, max ts (ms) in ts. */
static int socket_arrays(cw_wdb_t *db, const cw_wset_t *set, cw_wbuf_t *ts) {
  char tmp[64];
  int first = 1;
  db->a2.len = db->a3.len = ts->len = 0;
  if (cw__wbuf_add(&db->a2, "{", 1) || cw__wbuf_add(&db->a3, "{", 1) || cw__wbuf_add(ts, "{", 1)) return -ENOMEM;
  for (size_t i = 0; i < set->cap; i++) {
    const cw_wkey_t *k = &set->e[i];
    if (!k->used) continue;
    int m = snprintf(tmp, sizeof(tmp), "%s\"%s\"", first ? "" : ",", k->station);
    if (cw__wbuf_add(&db->a2, tmp, (size_t)m)) return -ENOMEM;
    m = snprintf(tmp, sizeof(tmp), "%s%u", first ? "" : ",", k->socket);
    if (cw__wbuf_add(&db->a3, tmp, (size_t)m)) return -ENOMEM;
    m = snprintf(tmp, sizeof(tmp), "%s%lld", first ? "" : ",", (long long)k->ts_ms);
    if (cw__wbuf_add(ts, tmp, (size_t)m)) return -ENOMEM;
    first = 0;
  }
  if (cw__wbuf_add(&db->a2, "}", 1) || cw__wbuf_add(&db->a3, "}", 1) || cw__wbuf_add(ts, "}", 1)) return -ENOMEM;
  return 0;
}

/* New stations get [alerts] default_timezone (the schema's default when the
 * server does not know that zone: a typo must not refuse readings) and that
 * zone's current offset as utc_offset_min (the detectors' night window). */
static const char SQL_REGISTER[] =
    "WITH z AS (SELECT coalesce((SELECT name FROM pg_timezone_names WHERE name = $2),"
    "  cw_default_timezone()) AS tz)"
    " INSERT INTO stations (code, timezone, utc_offset_min)"
    " SELECT c, z.tz, (extract(epoch FROM (now() AT TIME ZONE z.tz) - (now() AT TIME ZONE 'UTC')) / 60)::int"
    " FROM unnest($1::text[]) c, z ON CONFLICT DO NOTHING";
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
    rc = cw__wdb_classify(db->conn, r, msg, cap);
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
    rc = cw__wdb_classify(db->conn, r, msg, cap);
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
  if ((rc = cw__wdb_run(db, "BEGIN", 0, NULL, msg, cap)) != CW_WDB_OK) goto out;
  if (autoreg && nreg) {
    const char *v[2] = {db->a1.p, db->env->cfg->alert_default_tz}; /* [alerts] default_timezone */
    if ((rc = cw__wdb_run(db, SQL_REGISTER, 2, v, msg, cap)) != CW_WDB_OK) goto abort;
  }
  if (!idem) {
    rc = copy_data(db, "COPY readings (" CW_COPY_COLUMNS ") FROM STDIN (FORMAT binary)", buf, len,
                   stored, msg, cap);
  } else {
    uint64_t staged = 0;
    if (!db->temp_table) {
      rc = cw__wdb_run(db, "CREATE TEMP TABLE IF NOT EXISTS cw_readings_in (LIKE readings) ON COMMIT DELETE ROWS",
               0, NULL, msg, cap);
      if (rc != CW_WDB_OK) goto abort;
    }
    rc = copy_data(db, "COPY cw_readings_in (" CW_COPY_COLUMNS ") FROM STDIN (FORMAT binary)", buf, len,
                   &staged, msg, cap);
    if (rc == CW_WDB_OK) {
      PGresult *r = PQexec(db->conn, "INSERT INTO readings (" CW_COPY_COLUMNS ") SELECT " CW_COPY_COLUMNS
                                     " FROM cw_readings_in ON CONFLICT DO NOTHING");
      if (PQresultStatus(r) == PGRES_COMMAND_OK) *stored = strtoull(PQcmdTuples(r), NULL, 10);
      else rc = cw__wdb_classify(db->conn, r, msg, cap);
      PQclear(r);
    }
  }
  if (rc != CW_WDB_OK) goto abort;
  if ((rc = cw__wdb_run(db, "COMMIT", 0, NULL, msg, cap)) != CW_WDB_OK) goto abort;
  if (idem) db->temp_table = 1;
  if (autoreg)
    for (size_t i = 0; i < db->bst.cap; i++)
      if (db->bst.e[i].used) cw__wdb_known_add(db, db->bst.e[i].station);
  for (size_t i = 0; i < db->bsock.cap; i++) {
    cw_wkey_t *k = &db->bsock.e[i], *t;
    if (!k->used) continue;
    t = cw__wset_get(&db->dirty, k->station, k->socket, 1, NULL);
    if (t && k->ts_ms > t->ts_ms) t->ts_ms = k->ts_ms;
  }
  db->backoff_ms = CW_WDB_BACKOFF_MIN_MS;
  return rc;
abort:
  cw__wdb_rollback(db);
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
  rc = cw__wdb_run(db, db->env->cfg->auto_register ? SQL_SOCKETS_UPSERT : SQL_SOCKETS_UPDATE, 3, v, msg, sizeof(msg));
  if (rc == CW_WDB_OK) {
    cw__wset_clear(&db->dirty);
  } else {
    /* A data error here would repeat forever: drop the hints, the unique
     * index keeps replays correct without them. */
    if (rc != CW_WDB_TEMP) {
      cw_log(CW_LOG_WARN, "writer: updating sockets.last_ts: %s", msg);
      cw__wset_clear(&db->dirty);
      rc = CW_WDB_OK;
    } else {
      cw__wdb_remember(db, msg);
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
  if (rc == CW_WDB_TEMP) cw__wdb_remember(db, msg);
  return rc;
}

