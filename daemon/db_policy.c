/* db_policy.c - the schema and what the writer reads from it: migrations
 * (schema/NNN_*.sql, embedded in the binary), daily partitions kept ahead,
 * and the station and socket policies, last timestamps and open alerts it
 * posts to the workers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "station_tz.h"
#include "db.h"

#define ADVISORY_KEY "chargewatch.migrations"

typedef struct { const char *name; const char *sql; } cw_migration_t;
extern const cw_migration_t cw_migrations[]; /* build/schema_sql.c (schema/embed.sh) */
extern const size_t cw_migrations_count;

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


/* ------------------------------------------------------------- policies */

static void post(const cw_ctl_port_t *port, cw_ctl_t *c) {
  if (port && port->post) port->post(port->ctx, CW_CTL_BY_STATION, c);
  else free(c);
}

static cw_ctl_t *ctl_new(cw_ctl_type_t type, const char *station) {
  cw_ctl_t *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->type = type;
  snprintf(c->station, sizeof(c->station), "%s", station);
  return c;
}

static cw_site_type_t site_parse(const char *s) {
  if (!strcmp(s, "indoor")) return CW_SITE_INDOOR;
  if (!strcmp(s, "ground_floor")) return CW_SITE_GROUND_FLOOR;
  if (!strcmp(s, "basement")) return CW_SITE_BASEMENT;
  return CW_SITE_OUTDOOR;
}

/* Post the alerts not closed (of the stations keep accepts; all when keep
 * is NULL; with raiser, only those that daemon raised or no daemon claimed:
 * schema/006_alert_owner.sql) as CW_CTL_RESTORE_ALERT. The count, or -EIO
 * (logged), -ENOMEM. */
static int restore_alerts_where(PGconn *c, const cw_ctl_port_t *port,
                                int (*keep)(void *ctx, const char *station), void *keep_ctx,
                                const char *raiser) {
  int n = 0;
  PGresult *r;
  /* ts: when the current state began (a cleared alert's cool-down runs
   * from cleared_at). */
  r = PQexecParams(c,
      "SELECT id, station, socket, kind, severity, state,"
      " floor(extract(epoch FROM CASE WHEN state = 'cleared' THEN coalesce(cleared_at, opened_at)"
      "   ELSE opened_at END) * 1000)::bigint,"
      " coalesce(peak_value, 0), coalesce(threshold, 0), coalesce(unit, ''), coalesce(message, ''),"
      " coalesce(count, 1), coalesce(ref, '') FROM alerts WHERE state <> 'closed'"
      " AND ($1::text IS NULL OR raised_by IS NULL OR raised_by = $1) ORDER BY id",
      1, NULL, &raiser, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    cw_log(CW_LOG_ERROR, "restoring alerts: %s", PQerrorMessage(c));
    PQclear(r);
    return -EIO;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    if (keep && !keep(keep_ctx, PQgetvalue(r, i, 1))) continue;
    cw_ctl_t *ctl = ctl_new(CW_CTL_RESTORE_ALERT, PQgetvalue(r, i, 1));
    cw_alert_event_t *ev;
    const char *sv = PQgetvalue(r, i, 4), *sta = PQgetvalue(r, i, 5);
    if (!ctl) {
      PQclear(r);
      return -ENOMEM;
    }
    ev = &ctl->alert;
    ev->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    snprintf(ev->station, sizeof(ev->station), "%s", ctl->station);
    ev->socket = (uint8_t)atoi(PQgetvalue(r, i, 2));
    ctl->socket = ev->socket;
    if (cw_kind_parse(PQgetvalue(r, i, 3), &ev->kind) != 0) {
      free(ctl);
      continue;
    }
    ev->severity = strcmp(sv, "critical") ? CW_SEV_WARNING : CW_SEV_CRITICAL;
    ev->state = !strcmp(sta, "cleared") ? CW_ALERT_CLEARED
                : !strcmp(sta, "acknowledged") ? CW_ALERT_ACKNOWLEDGED
                : !strcmp(sta, "rectified") ? CW_ALERT_RECTIFIED : CW_ALERT_OPEN;
    ev->event = CW_EV_RAISED;
    ev->ts_ms = strtoll(PQgetvalue(r, i, 6), NULL, 10);
    ev->value = strtod(PQgetvalue(r, i, 7), NULL);
    ev->threshold = strtod(PQgetvalue(r, i, 8), NULL);
    snprintf(ev->unit, sizeof(ev->unit), "%s", PQgetvalue(r, i, 9));
    snprintf(ev->message, sizeof(ev->message), "%s", PQgetvalue(r, i, 10));
    ev->count = (uint32_t)strtoul(PQgetvalue(r, i, 11), NULL, 10); /* 0 reads as 1 */
    snprintf(ev->ref, sizeof(ev->ref), "%.*s", (int)sizeof(ev->ref) - 1, PQgetvalue(r, i, 12));
    post(port, ctl);
    n++;
  }
  PQclear(r);
  return n;
}

int cw__db_load_policies(cw_wdb_t *db, const cw_ctl_port_t *port, cw_idgen_t *ids, int restore,
                         int restore_alerts) {
  PGconn *c = db->conn;
  int rc = -EIO, n = 0;
  PGresult *r;
  cw__wdb_known_clear(db);
  r = PQexec(c,
      "SELECT code, utc_offset_min, (extract(epoch FROM night_start) / 60)::int,"
      " (extract(epoch FROM night_end) / 60)::int, overnight_allowed,"
      " coalesce(breaker_w, 0), site_type, coalesce(charge_max_w, 0), timezone FROM stations");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) goto fail;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *code = PQgetvalue(r, i, 0);
    cw_ctl_t *ctl = ctl_new(CW_CTL_STATION, code);
    if (!ctl) goto nomem;
    ctl->station_policy.utc_offset_min = atoi(PQgetvalue(r, i, 1));
    ctl->station_policy.night_start_min = atoi(PQgetvalue(r, i, 2));
    ctl->station_policy.night_end_min = atoi(PQgetvalue(r, i, 3));
    ctl->station_policy.overnight_allowed = PQgetvalue(r, i, 4)[0] == 't';
    ctl->station_policy.breaker_w = strtod(PQgetvalue(r, i, 5), NULL);
    ctl->station_policy.site_type = site_parse(PQgetvalue(r, i, 6));
    ctl->station_policy.charge_max_w = strtod(PQgetvalue(r, i, 7), NULL);
    post(port, ctl);
    /* the alert log's local time (station_tz.h); an unreadable zone falls back */
    if (cw_station_tz_set(code, PQgetvalue(r, i, 8)) == -ENOENT)
      cw_log(CW_LOG_WARN, "writer: station %s: time zone \"%s\" not found under the zoneinfo"
                          " directory; the alert log uses [alerts] default_timezone", code,
             PQgetvalue(r, i, 8));
    cw__wdb_known_add(db, code);
    n++;
  }
  PQclear(r);
  /* ordered by station: a station's sockets go in messages of up to
   * CW_CTL_SOCKETS_MAX, each socket with its restored last reading */
  r = PQexec(c,
      "SELECT station, socket, rated_w, forbidden,"
      " floor(extract(epoch FROM last_ts) * 1000)::bigint, coalesce(charge_max_w, 0) FROM sockets"
      " ORDER BY station, socket");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) goto fail;
  cw_ctl_t *batch = NULL;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *st = PQgetvalue(r, i, 0);
    int sock = atoi(PQgetvalue(r, i, 1));
    if (sock < 1 || sock > 255) continue;
    if (batch && (batch->sockets.n == CW_CTL_SOCKETS_MAX || strcmp(batch->station, st))) {
      post(port, batch);
      batch = NULL;
    }
    if (!batch && !(batch = ctl_new(CW_CTL_SOCKET, st))) goto nomem;
    cw_ctl_socket_t *k = &batch->sockets.s[batch->sockets.n++];
    k->socket = (uint8_t)sock;
    k->policy.rated_w = strtod(PQgetvalue(r, i, 2), NULL);
    k->policy.forbidden = PQgetvalue(r, i, 3)[0] == 't';
    k->policy.charge_max_w = strtod(PQgetvalue(r, i, 5), NULL);
    if (restore && !PQgetisnull(r, i, 4)) k->ts_ms = strtoll(PQgetvalue(r, i, 4), NULL, 10);
  }
  if (batch) post(port, batch);
  PQclear(r);
  r = NULL;
  if (restore_alerts) {
    /* outside cluster mode, the alerts this daemon raised: another daemon on
     * the same database (disjoint stations) keeps its own */
    const cw_config_t *cfg = db->env->cfg;
    if ((rc = restore_alerts_where(c, port, NULL, NULL, cfg->shards ? NULL : cfg->mqtt_client_id)) < 0)
      goto fail_logged;
    cw_log(CW_LOG_INFO, "writer: restored %d alerts not closed", rc);
    rc = -EIO;
    /* ids unique across restarts without asking the database at raise
     * time: never below max(id) + 1 (lib/idgen.h) */
    r = PQexec(c, "SELECT coalesce(max(id), 0) + 1 FROM alerts");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) goto fail;
    if (ids) cw_idgen_raise(ids, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    /* short references go on from the day's last one (lib/alert_ref.h) */
    r = PQexec(c, "SELECT (now() AT TIME ZONE 'UTC')::date - date '1970-01-01',"
                  " cw_alert_ref_last((now() AT TIME ZONE 'UTC')::date)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) goto fail;
    if (ids) cw_idgen_ref_restore(ids, atoi(PQgetvalue(r, 0, 0)), (uint32_t)strtoul(PQgetvalue(r, 0, 1), NULL, 10));
    PQclear(r);
    r = NULL;
  }
  cw_log(CW_LOG_INFO, "writer: loaded %d station policies", n);
  return 0;
nomem:
  rc = -ENOMEM;
fail:
  if (rc == -EIO) cw_log(CW_LOG_ERROR, "writer: loading policies: %s", PQerrorMessage(c));
fail_logged:
  PQclear(r);
  return rc;
}

int cw__db_restore_where(PGconn *c, PGconn *ts_conn, const cw_ctl_port_t *port,
                         int (*keep)(void *ctx, const char *station), void *keep_ctx) {
  int n = 0;
  PGresult *r = PQexec(ts_conn, "SELECT station, socket, floor(extract(epoch FROM last_ts) * 1000)::bigint"
                          " FROM sockets WHERE last_ts IS NOT NULL");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return -EIO;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    const char *st = PQgetvalue(r, i, 0);
    int sock = atoi(PQgetvalue(r, i, 1));
    if (sock < 1 || sock > 255 || !keep(keep_ctx, st)) continue;
    cw_ctl_t *ctl = ctl_new(CW_CTL_RESTORE_TS, st);
    if (!ctl) {
      PQclear(r);
      return -ENOMEM;
    }
    ctl->socket = (uint8_t)sock;
    ctl->ts_ms = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    post(port, ctl);
    n++;
  }
  PQclear(r);
  int na = restore_alerts_where(c, port, keep, keep_ctx, NULL);
  return na < 0 ? na : n + na;
}

/* ------------------------------------------------------------- partitions */

int cw__db_partitions(cw_wdb_t *db, int ahead) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT cw_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 1,"
           " (now() AT TIME ZONE 'UTC')::date + %d)",
           ahead > 0 ? ahead : 0);
  /* several daemons on one database ([cluster]) start together: creating
   * the same day's partition twice fails, so they take turns */
  if (cw__wdb_exec(db->conn, "SELECT pg_advisory_lock(hashtext('chargewatch.partitions'))"))
    return -EIO;
  PGresult *r = PQexec(db->conn, sql);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  if (cw__wdb_exec(db->conn, "SELECT pg_advisory_unlock(hashtext('chargewatch.partitions'))"))
    ok = 0;
  if (!ok)
    cw_log(CW_LOG_WARN, "writer: creating partitions: %s", PQerrorMessage(db->conn));
  else if (atoi(PQgetvalue(r, 0, 0)) > 0)
    cw_log(CW_LOG_INFO, "writer: created %s readings partitions", PQgetvalue(r, 0, 0));
  PQclear(r);
  return ok ? 0 : -EIO;
}

