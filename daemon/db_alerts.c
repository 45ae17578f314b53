/* db_alerts.c - storing alert events: one upsert of the alerts row and one
 * alert_events row per event (a charging session: one upsert), in one
 * transaction per call, sent in libpq pipeline mode; an event the database
 * refuses for its content is logged and skipped. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "session.h"

/* ------------------------------------------------------------- alerts */

/* Timestamps per event: raised -> opened_at, escalated -> escalated_at,
 * cleared -> cleared_at, acknowledged -> acked_at/by, rectified ->
 * rectified_at/by/rectify_note (and acked_at/by when not yet set, as the SQL
 * function does), closed -> closed_at/by; the first acknowledgement and
 * rectification stand (a late copy of one changes nothing). raised and repeated (the condition
 * came back inside the cool-down) reset cleared_at; raised, escalated and
 * repeated set last_seen to the event time; count is the largest seen (an
 * event spooled before count existed carries 0: read as 1). A closed row
 * stays closed and a rectified one is not taken back to an earlier state;
 * severity, threshold, message and unit follow the latest raise, repeat or
 * escalation; peak_value is the largest value in the current unit (an
 * escalation by another rule, C -> C/s, starts afresh). Replaying an event
 * is harmless. */
static const char SQL_ALERT_UPSERT[] =
    "INSERT INTO alerts AS a (id, station, socket, kind, severity, state, opened_at, escalated_at,"
    " cleared_at, acked_at, acked_by, closed_at, closed_by, peak_value, threshold, message, unit,"
    " count, last_seen, rectified_at, rectified_by, rectify_note, ref, raised_by, updated_at)"
    " SELECT $1, $2, $3, $4, coalesce($5, 'warning'), $6, e.ts,"
    "  CASE WHEN $7 = 'escalated' THEN e.ts END, CASE WHEN $7 = 'cleared' THEN e.ts END,"
    "  CASE WHEN $7 IN ('acknowledged', 'rectified') THEN e.ts END,"
    "  CASE WHEN $7 IN ('acknowledged', 'rectified') THEN $13 END,"
    "  CASE WHEN $7 = 'closed' THEN e.ts END, CASE WHEN $7 = 'closed' THEN $13 END,"
    "  $9, $10, $11, $12, greatest($15::int, 1), CASE WHEN $7 IN ('raised', 'escalated', 'repeated') THEN e.ts END,"
    "  CASE WHEN $7 = 'rectified' THEN e.ts END, CASE WHEN $7 = 'rectified' THEN $13 END,"
    "  CASE WHEN $7 = 'rectified' THEN $16 END, $17, $19, now()"
    " FROM (SELECT timestamptz 'epoch' + $8 * interval '1 millisecond' AS ts) e"
    " ON CONFLICT (id) DO UPDATE SET"
    "  state = CASE WHEN a.state = 'closed' THEN 'closed'"
    "   WHEN a.state = 'rectified' AND excluded.state IN ('open', 'cleared', 'acknowledged') THEN 'rectified'"
    "   ELSE excluded.state END,"
    "  severity = CASE WHEN $5 IS NOT NULL AND $7 IN ('raised', 'escalated', 'repeated') THEN excluded.severity"
    "   ELSE a.severity END,"
    "  opened_at = least(a.opened_at, excluded.opened_at),"
    "  escalated_at = coalesce(excluded.escalated_at, a.escalated_at),"
    "  cleared_at = CASE WHEN $7 IN ('raised', 'repeated') THEN NULL"
    "   ELSE coalesce(excluded.cleared_at, a.cleared_at) END,"
    "  acked_at = coalesce(a.acked_at, excluded.acked_at),"
    "  acked_by = CASE WHEN a.acked_at IS NULL THEN excluded.acked_by ELSE a.acked_by END,"
    "  rectified_at = coalesce(a.rectified_at, excluded.rectified_at),"
    "  rectified_by = coalesce(a.rectified_by, excluded.rectified_by),"
    "  rectify_note = coalesce(a.rectify_note, excluded.rectify_note),"
    "  closed_at = coalesce(excluded.closed_at, a.closed_at),"
    "  closed_by = coalesce(excluded.closed_by, a.closed_by),"
    "  count = greatest(a.count, excluded.count),"
    "  ref = coalesce(a.ref, excluded.ref),"
    "  raised_by = coalesce(a.raised_by, excluded.raised_by),"
    "  last_seen = CASE WHEN a.last_seen IS NULL OR excluded.last_seen > a.last_seen THEN"
    "   coalesce(excluded.last_seen, a.last_seen) ELSE a.last_seen END,"
    "  peak_value = CASE WHEN $7 NOT IN ('raised', 'escalated', 'repeated') THEN a.peak_value"
    "   WHEN a.unit IS DISTINCT FROM excluded.unit THEN excluded.peak_value"
    "   ELSE greatest(a.peak_value, excluded.peak_value) END,"
    "  threshold = CASE WHEN $7 IN ('raised', 'escalated', 'repeated') THEN excluded.threshold ELSE a.threshold END,"
    "  message = CASE WHEN $7 IN ('raised', 'escalated', 'repeated') THEN excluded.message ELSE a.message END,"
    "  unit = CASE WHEN $7 IN ('raised', 'escalated', 'repeated') THEN excluded.unit ELSE a.unit END,"
    "  updated_at = now()";
static const char SQL_ALERT_EVENT[] =
    "INSERT INTO alert_events (alert_id, ts, event, severity, value, detail)"
    " VALUES ($1, timestamptz 'epoch' + $8 * interval '1 millisecond', $7, $5, $9,"
    "  jsonb_strip_nulls(jsonb_build_object('state', $6, 'threshold', $10, 'unit', $12, 'message', $11,"
    "   'by', $13, 'count', greatest($15::int, 1), 'note', $16,"
    "   'recv_ts', timestamptz 'epoch' + $14 * interval '1 millisecond')) || coalesce($18::jsonb, '{}'))"
    " ON CONFLICT DO NOTHING";

#define TEXTOID 25
#define INT8OID 20
#define INT2OID 21
#define FLOAT8OID 701
#define INT4OID 23
static const Oid alert_types[19] = {INT8OID, TEXTOID, INT2OID,   TEXTOID,   TEXTOID, TEXTOID,
                                    TEXTOID, INT8OID, FLOAT8OID, FLOAT8OID, TEXTOID, TEXTOID,
                                    TEXTOID, INT8OID, INT4OID,   TEXTOID, TEXTOID, TEXTOID,
                                    TEXTOID};

void cw__wdb_note_mqtt_command(cw_wdb_t *db, int64_t id, cw_event_t event) {
  pthread_mutex_lock(&db->share_mu);
  struct cw_wdb_origin *o = &db->origin[db->norigin++ % CW_WDB_ORIGINS];
  o->id = id;
  o->event = (int)event;
  pthread_mutex_unlock(&db->share_mu);
}

/* The event of a command noted above, as the JSON merged into detail (an
 * alert is acknowledged, rectified and closed once each, so an entry is
 * left in place for a retry of the transaction); NULL for any other event. An operator event not noted
 * came from the database (cw_alert_action stores its own record, with
 * detail.via "sql" and the database role). */
static char *mqtt_origin(cw_wdb_t *db, const cw_alert_event_t *ev) {
  int found = 0;
  if (ev->event != CW_EV_ACKNOWLEDGED && ev->event != CW_EV_RECTIFIED && ev->event != CW_EV_CLOSED)
    return NULL;
  pthread_mutex_lock(&db->share_mu);
  size_t n = db->norigin < CW_WDB_ORIGINS ? db->norigin : CW_WDB_ORIGINS;
  for (size_t i = 0; i < n && !found; i++) {
    struct cw_wdb_origin *o = &db->origin[i];
    if (o->id == ev->id && o->event == (int)ev->event) found = 1;
  }
  pthread_mutex_unlock(&db->share_mu);
  if (!found) return NULL;
  const cw_config_t *c = db->env->cfg;
  char who[400];
  if (c->mqtt_cmd_publishers[0]) snprintf(who, sizeof who, "%s", c->mqtt_cmd_publishers);
  else snprintf(who, sizeof who, "any client the broker ACL allows to publish on %s", c->mqtt_cmd_topic);
  cJSON *j = cJSON_CreateObject();
  if (!j) return NULL;
  cJSON_AddStringToObject(j, "via", "mqtt");
  cJSON_AddStringToObject(j, "topic", c->mqtt_cmd_topic);
  cJSON_AddStringToObject(j, "publishers", who);
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return s;
}


/* A charging session (lib/session.h) in its envelope: one upsert keyed by
 * (station, socket, started_at), so a checkpoint is replaced by the final
 * record and a replay from the spool changes nothing. */
static const char SQL_SESSION[] =
    "SELECT cw_session_store($1, $2::int, timestamptz 'epoch' + $3::bigint * interval '1 millisecond',"
    " timestamptz 'epoch' + $4::bigint * interval '1 millisecond', $5::float8, $6::real, $7::real,"
    " $8, $9::int)";

/* The statements of one event with their parameters: a session is one
 * upsert; an alert event is the alerts upsert, then the alert_events row.
 * The strings live here until the statements are sent or run. */
typedef struct {
  int nstmt, nparams;
  const char *sql[2];
  const Oid *types;
  const char *v[19];
  char id[24], sock[8], ts[24], t1[24], val[32], thr[32], recv[24], cnt[16], n[16];
  char ref[sizeof(((cw_alert_event_t *)0)->ref) + 1];
  char *origin; /* cJSON_free */
} stmts_t;

static void session_stmts(const cw_session_t *s, stmts_t *p) {
  snprintf(p->sock, sizeof p->sock, "%u", (unsigned)s->socket);
  snprintf(p->ts, sizeof p->ts, "%lld", (long long)s->start_ms);
  snprintf(p->t1, sizeof p->t1, "%lld", (long long)s->end_ms);
  snprintf(p->val, sizeof p->val, "%.9g", s->energy_wh > 0 ? s->energy_wh : 0.0);
  snprintf(p->thr, sizeof p->thr, "%.9g", (double)s->peak_w);
  snprintf(p->recv, sizeof p->recv, "%.9g", (double)s->peak_t);
  snprintf(p->n, sizeof p->n, "%u", (unsigned)s->readings);
  const char *v[9] = {s->station, p->sock, p->ts, p->t1, p->val, isnan(s->peak_w) ? NULL : p->thr,
                      isnan(s->peak_t) ? NULL : p->recv, cw_session_end_name(s->end), p->n};
  memcpy(p->v, v, sizeof v);
  p->nstmt = 1;
  p->nparams = 9;
  p->sql[0] = SQL_SESSION;
  p->types = NULL;
}

/* s: the unwrapped session when ev carries one (its strings point into it). */
static void event_stmts(cw_wdb_t *db, const cw_alert_event_t *ev, cw_session_t *s, stmts_t *p) {
  p->origin = NULL;
  if (cw_session_unwrap(ev, s)) {
    session_stmts(s, p);
    return;
  }
  snprintf(p->id, sizeof(p->id), "%lld", (long long)ev->id);
  snprintf(p->sock, sizeof(p->sock), "%u", ev->socket);
  snprintf(p->ts, sizeof(p->ts), "%lld", (long long)ev->ts_ms);
  snprintf(p->val, sizeof(p->val), "%.17g", ev->value);
  snprintf(p->thr, sizeof(p->thr), "%.17g", ev->threshold);
  snprintf(p->recv, sizeof(p->recv), "%lld", (long long)(ev->recv_ms ? ev->recv_ms : ev->ts_ms));
  snprintf(p->cnt, sizeof(p->cnt), "%u", (unsigned)ev->count);
  snprintf(p->ref, sizeof p->ref, "%.*s", (int)sizeof ev->ref, ev->ref);
  p->origin = mqtt_origin(db, ev);
  const char *v[19] = {
      p->id, ev->station, p->sock, cw_kind_name(ev->kind),
      ev->severity == CW_SEV_NONE ? NULL : cw_severity_name(ev->severity),
      cw_alert_state_name(ev->state), cw_event_name(ev->event), p->ts, p->val, p->thr,
      ev->message, ev->unit, ev->by[0] ? ev->by : NULL, p->recv, p->cnt, cw_alert_event_note(ev),
      p->ref[0] ? p->ref : NULL, /* none: the database gives one (schema/003_ops.sql) */
      p->origin,
      db->env->cfg->mqtt_client_id}; /* the alert's owner (schema/006_alert_owner.sql) */
  memcpy(p->v, v, sizeof v);
  p->nstmt = 2;
  p->nparams = 19;
  p->sql[0] = SQL_ALERT_UPSERT;
  p->sql[1] = SQL_ALERT_EVENT;
  p->types = alert_types;
}

static int result_rc(cw_wdb_t *db, PGresult *r, char *msg, size_t cap) {
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? CW_WDB_OK
                                                           : cw__wdb_classify(db->conn, r, msg, cap);
  return rc == CW_WDB_DUP ? CW_WDB_PERM : rc;
}

/* One event, statement by statement (the path that finds a refused event). */
static int alert_one(cw_wdb_t *db, const cw_alert_event_t *ev, char *msg, size_t cap) {
  cw_session_t sess;
  stmts_t p;
  event_stmts(db, ev, &sess, &p);
  int rc = CW_WDB_OK;
  for (int k = 0; k < p.nstmt && rc == CW_WDB_OK; k++) {
    PGresult *r = PQexecParams(db->conn, p.sql[k], p.nparams, p.types, p.v, NULL, NULL, 0);
    rc = result_rc(db, r, msg, cap);
    PQclear(r);
  }
  cJSON_free(p.origin);
  return rc;
}

/* Events per pipeline sync: their results (a few dozen bytes each) fit the
 * socket buffers, so sending a whole chunk before reading cannot block both
 * ends at once on this blocking connection. */
#define PIPE_CHUNK 128

/* Events [0, n) inside the open transaction, sent in pipeline mode a chunk
 * at a time: one round trip per chunk instead of one per statement (a
 * checkpoint or a stop writes thousands of sessions). The first failure
 * ends it; later statements of its chunk are skipped by the server. */
static int events_pipelined(cw_wdb_t *db, const cw_alert_event_t *v, size_t n, char *msg,
                            size_t cap) {
  int rc = CW_WDB_OK;
  if (!PQenterPipelineMode(db->conn)) return CW_WDB_TEMP;
  for (size_t i = 0; i < n && rc == CW_WDB_OK; i += PIPE_CHUNK) {
    size_t end = i + PIPE_CHUNK < n ? i + PIPE_CHUNK : n;
    int sent = 0, sync = 1;
    for (size_t e = i; e < end && rc == CW_WDB_OK; e++) {
      cw_session_t sess;
      stmts_t p;
      event_stmts(db, &v[e], &sess, &p);
      for (int k = 0; k < p.nstmt && rc == CW_WDB_OK; k++) {
        if (PQsendQueryParams(db->conn, p.sql[k], p.nparams, p.types, p.v, NULL, NULL, 0)) sent++;
        else rc = cw__wdb_classify(db->conn, NULL, msg, cap); /* connection trouble */
      }
      cJSON_free(p.origin);
    }
    if (!PQpipelineSync(db->conn)) {
      if (rc == CW_WDB_OK) rc = cw__wdb_classify(db->conn, NULL, msg, cap);
      sync = 0;
    }
    /* every result of what was sent, then the sync point */
    for (int k = 0; k < sent; k++) {
      PGresult *r = PQgetResult(db->conn);
      if (!r) { /* connection lost: no more results */
        if (rc == CW_WDB_OK) rc = cw__wdb_classify(db->conn, NULL, msg, cap);
        sync = 0;
        break;
      }
      if (PQresultStatus(r) != PGRES_PIPELINE_ABORTED && rc == CW_WDB_OK) rc = result_rc(db, r, msg, cap);
      PQclear(r);
      while ((r = PQgetResult(db->conn))) PQclear(r); /* the NULL that ends each result */
    }
    while (sync) {
      PGresult *r = PQgetResult(db->conn);
      if (!r) break;
      sync = PQresultStatus(r) != PGRES_PIPELINE_SYNC;
      PQclear(r);
    }
  }
  if (!PQexitPipelineMode(db->conn) && rc == CW_WDB_OK) rc = CW_WDB_TEMP;
  return rc;
}

int cw__wdb_store_alerts(cw_wdb_t *db, const cw_alert_event_t *v, size_t n) {
  char msg[256] = "";
  int rc = cw__wdb_run(db, "BEGIN", 0, NULL, msg, sizeof(msg));
  if (rc == CW_WDB_OK) rc = events_pipelined(db, v, n, msg, sizeof(msg));
  if (rc == CW_WDB_OK) rc = cw__wdb_run(db, "COMMIT", 0, NULL, msg, sizeof(msg));
  if (rc == CW_WDB_OK) {
    db->backoff_ms = CW_WDB_BACKOFF_MIN_MS;
    return rc;
  }
  cw__wdb_rollback(db);
  if (rc != CW_WDB_PERM) {
    cw__wdb_remember(db, msg);
    return CW_WDB_TEMP;
  }
  /* Some event is refused for its content: one transaction each, skip it. */
  for (size_t i = 0; i < n; i++) {
    rc = cw__wdb_run(db, "BEGIN", 0, NULL, msg, sizeof(msg));
    if (rc == CW_WDB_OK) rc = alert_one(db, &v[i], msg, sizeof(msg));
    if (rc == CW_WDB_OK) rc = cw__wdb_run(db, "COMMIT", 0, NULL, msg, sizeof(msg));
    if (rc == CW_WDB_OK) continue;
    cw__wdb_rollback(db);
    if (rc != CW_WDB_PERM) return CW_WDB_TEMP; /* earlier ones are stored; replay is idempotent */
    cw_session_t sess;
    if (cw_session_unwrap(&v[i], &sess))
      cw_log(CW_LOG_ERROR, "writer: charging session %s/%u refused by the database: %s", sess.station,
             (unsigned)sess.socket, msg);
    else
      cw_log(CW_LOG_ERROR, "writer: alert %lld event %s refused by the database: %s",
             (long long)v[i].id, cw_event_name(v[i].event), msg);
  }
  return CW_WDB_OK;
}

/* ------------------------------------------------------------- gauge */

/* Alerts not closed, by kind, severity and state, as operators see them
 * (`chargewatch alerts`): every combination is set, 0 when none. */
int cw__wdb_alerts_open(cw_wdb_t *db, cw_metrics_t *m) {
  uint64_t n[CW_KIND__COUNT][3][CW_ALERT_RECTIFIED + 1];
  memset(n, 0, sizeof n);
  PGresult *r = PQexec(db->conn, "SELECT kind, severity, state, count(*) FROM alerts"
                                 " WHERE state <> 'closed' GROUP BY 1, 2, 3");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return -EIO;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    cw_kind_t k;
    if (cw_kind_parse(PQgetvalue(r, i, 0), &k) != 0 || (unsigned)k >= CW_KIND__COUNT) continue;
    int sv = !strcmp(PQgetvalue(r, i, 1), "critical") ? CW_SEV_CRITICAL : CW_SEV_WARNING;
    for (int st = 0; st <= CW_ALERT_RECTIFIED; st++)
      if (!strcmp(PQgetvalue(r, i, 2), cw_alert_state_name((cw_alert_state_t)st)))
        n[k][sv][st] += strtoull(PQgetvalue(r, i, 3), NULL, 10);
  }
  PQclear(r);
  for (int k = 0; k < CW_KIND__COUNT; k++)
    for (int sv = 0; sv < 3; sv++)
      for (int st = 0; st <= CW_ALERT_RECTIFIED; st++)
        atomic_store_explicit(&m->alerts_open[k][sv][st], n[k][sv][st], memory_order_relaxed);
  atomic_store_explicit(&m->alerts_open_ms, cw_now_ms(), memory_order_relaxed);
  return 0;
}

/* ------------------------------------------------------------- states */

int cw_db_alert_states(const char *conninfo, void (*fn)(void *ctx, const cw_alert_event_t *ev),
                       void *ctx) {
  PGconn *c = PQconnectdb(conninfo);
  PGresult *r = NULL;
  int rc = -EIO;
  if (PQstatus(c) != CONNECTION_OK) goto out;
  r = PQexec(c,
      "SELECT id, station, socket, kind, severity, state,"
      " CASE WHEN state IN ('acknowledged', 'cleared', 'rectified') THEN state"
      "  WHEN escalated_at IS NOT NULL THEN 'escalated' ELSE 'raised' END,"
      " floor(extract(epoch FROM coalesce(CASE state WHEN 'acknowledged' THEN acked_at"
      "  WHEN 'cleared' THEN cleared_at WHEN 'rectified' THEN acked_at END, escalated_at,"
      "  opened_at)) * 1000)::bigint,"
      " coalesce(peak_value, 0), coalesce(threshold, 0), coalesce(unit, ''),"
      " coalesce(message, ''), coalesce(CASE WHEN state IN ('acknowledged', 'rectified')"
      "  THEN acked_by END, '')"
      " FROM alerts WHERE state <> 'closed' ORDER BY id");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) goto out;
  for (int i = 0; i < PQntuples(r); i++) {
    cw_alert_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    snprintf(ev.station, sizeof ev.station, "%s", PQgetvalue(r, i, 1));
    ev.socket = (uint8_t)atoi(PQgetvalue(r, i, 2));
    if (cw_kind_parse(PQgetvalue(r, i, 3), &ev.kind) != 0) continue;
    ev.severity = strcmp(PQgetvalue(r, i, 4), "critical") ? CW_SEV_WARNING : CW_SEV_CRITICAL;
    const char *st = PQgetvalue(r, i, 5), *e = PQgetvalue(r, i, 6);
    ev.state = !strcmp(st, "cleared") ? CW_ALERT_CLEARED
               : !strcmp(st, "acknowledged") ? CW_ALERT_ACKNOWLEDGED
               : !strcmp(st, "rectified") ? CW_ALERT_RECTIFIED : CW_ALERT_OPEN;
    ev.event = !strcmp(e, "acknowledged") ? CW_EV_ACKNOWLEDGED
               : !strcmp(e, "rectified") ? CW_EV_RECTIFIED
               : !strcmp(e, "cleared") ? CW_EV_CLEARED
               : !strcmp(e, "escalated") ? CW_EV_ESCALATED : CW_EV_RAISED;
    ev.ts_ms = ev.recv_ms = strtoll(PQgetvalue(r, i, 7), NULL, 10);
    ev.value = strtod(PQgetvalue(r, i, 8), NULL);
    ev.threshold = strtod(PQgetvalue(r, i, 9), NULL);
    snprintf(ev.unit, sizeof ev.unit, "%s", PQgetvalue(r, i, 10));
    snprintf(ev.message, sizeof ev.message, "%s", PQgetvalue(r, i, 11));
    snprintf(ev.by, sizeof ev.by, "%s", PQgetvalue(r, i, 12));
    fn(ctx, &ev);
  }
  rc = 0;
out:
  if (rc) {
    const char *msg = PQerrorMessage(c);
    cw_log(CW_LOG_WARN, "reconcile: cannot read the alert states: %.*s", (int)strcspn(msg, "\n"),
           msg);
  }
  PQclear(r);
  PQfinish(c);
  return rc;
}
