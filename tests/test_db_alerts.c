/* test_db_alerts.c - the alert upsert (daemon/db_alerts.c) against a real
 * PostgreSQL: a repeat inside the cool-down bumps count and last_seen and
 * reopens the row; rectified records who, when and the note, and a late
 * copy of an earlier step (acknowledged) does not take it back; restore
 * reads count and the rectified state. */
#include <math.h>
#include <stdlib.h>

#include "db.h"
#include "fixture.h"
#include "session.h"
#include "test.h"

#define T0 1764374400000LL /* 2025-11-29T00:00:00Z */

static cw_alert_event_t ev_at(cw_event_t e, cw_alert_state_t st, int64_t ts, uint32_t count,
                              const char *by, const char *msg) {
  cw_alert_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.id = 4242;
  ev.kind = CW_KIND_OVERLOAD;
  ev.severity = CW_SEV_WARNING;
  ev.event = e;
  ev.state = st;
  ev.ts_ms = ts;
  ev.value = 800;
  ev.threshold = 700;
  ev.socket = 3;
  ev.count = count;
  snprintf(ev.station, sizeof ev.station, "DBA1");
  snprintf(ev.unit, sizeof ev.unit, "W");
  snprintf(ev.by, sizeof ev.by, "%s", by);
  snprintf(ev.message, sizeof ev.message, "%s", msg);
  return ev;
}

static char *q(PGconn *c, const char *sql) {
  static char out[512];
  PGresult *r = PQexec(c, sql);
  snprintf(out, sizeof out, "%s",
           PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? PQgetvalue(r, 0, 0) : "<none>");
  PQclear(r);
  return out;
}

/* A writer connection to a fresh database with the schema and station DBA1
 * (c: a second connection for the checks); 0, or -1 when it failed. */
static int open_db(cw_fx_t *f, cw_wdb_t *db, PGconn **c) {
  cw_writer_t *w = NULL;
  if (cw_fx_writer(f, &w)) return -1; /* applies the schema */
  cw_writer_free(w);
  *c = cw_fx_conn(f);
  cw_fx_exec(*c, "INSERT INTO stations(code) VALUES ('DBA1')");
  if (cw__wdb_init(db, &f->env, NULL) || cw__wdb_connect_blocking(db)) return -1;
  db->ready = 1;
  return 0;
}

CW_TEST(db_alerts_repeat_rectify) {
  static cw_fx_t f;
  CW_FX_NEED_PG(&f, "cw_db_alerts_test");
  static cw_wdb_t db;
  PGconn *c = NULL;
  CHECK_EQ(open_db(&f, &db, &c), 0);

  cw_alert_event_t v[3] = {
      ev_at(CW_EV_RAISED, CW_ALERT_OPEN, T0, 1, "", "power 800 W"),
      ev_at(CW_EV_CLEARED, CW_ALERT_CLEARED, T0 + 60000, 1, "", "power 800 W"),
      ev_at(CW_EV_REPEATED, CW_ALERT_OPEN, T0 + 120000, 2, "", "power 900 W"),
  };
  v[2].value = 900;
  CHECK_EQ(cw__wdb_store_alerts(&db, v, 3), CW_WDB_OK);
  CHECK_STR(q(c, "SELECT state || ' ' || count || ' ' || (cleared_at IS NULL) || ' ' ||"
                 " cw_utc_text(last_seen) || ' ' || peak_value || ' ' || message FROM alerts WHERE id = 4242"),
            "open 2 true 2025-11-29T00:02:00.000Z 900 power 900 W");
  CHECK_STR(q(c, "SELECT string_agg(event || ':' || (detail->>'count'), ',' ORDER BY ts)"
                 " FROM alert_events WHERE alert_id = 4242"),
            "raised:1,cleared:1,repeated:2");

  /* acknowledged, rectified with a note, then a late acknowledged copy */
  cw_alert_event_t o[3] = {
      ev_at(CW_EV_ACKNOWLEDGED, CW_ALERT_ACKNOWLEDGED, T0 + 180000, 2, "anna", "acknowledged by anna"),
      ev_at(CW_EV_RECTIFIED, CW_ALERT_RECTIFIED, T0 + 240000, 2, "bob", "rectified by bob: new plug"),
      ev_at(CW_EV_ACKNOWLEDGED, CW_ALERT_ACKNOWLEDGED, T0 + 250000, 2, "carl", "acknowledged by carl"),
  };
  CHECK_EQ(cw__wdb_store_alerts(&db, o, 3), CW_WDB_OK);
  CHECK_STR(q(c, "SELECT state || ' ' || acked_by || ' ' || rectified_by || ' ' || rectify_note || ' ' ||"
                 " cw_utc_text(rectified_at) || ' ' || count FROM alerts WHERE id = 4242"),
            "rectified anna bob new plug 2025-11-29T00:04:00.000Z 2");
  CHECK_STR(q(c, "SELECT detail->>'note' FROM alert_events WHERE alert_id = 4242 AND event = 'rectified'"),
            "new plug");

  /* restore: count and the rectified state come back */
  int before = cw_fx_nposted(&f);
  cw_ctl_port_t port = cw_fx_port(&f);
  CHECK_EQ(cw__db_load_policies(&db, &port, &f.ids, 1, 1), 0);
  CHECK(cw_fx_nposted(&f) > before);
  CHECK_EQ(f.posted_tail->type, CW_CTL_RESTORE_ALERT);
  CHECK_EQ(f.posted_tail->alert.id, 4242);
  CHECK_EQ(f.posted_tail->alert.count, 2);
  CHECK_EQ(f.posted_tail->alert.state, CW_ALERT_RECTIFIED);
  cw__wdb_close(&db);
  cw__wdb_free(&db);
  PQfinish(c);
  cw_fx_free(&f);
}

/* Many events in one call go through the pipeline a chunk at a time: 300
 * sessions and an alert's events between them, all stored; a batch with one
 * session the database refuses (ended before it started) stores every other
 * event of it and skips that one. */
CW_TEST(db_alerts_pipelined_chunks) {
  static cw_fx_t f;
  CW_FX_NEED_PG(&f, "cw_db_alerts_pipe_test");
  static cw_wdb_t db;
  PGconn *c = NULL;
  CHECK_EQ(open_db(&f, &db, &c), 0);

  enum { N = 302 };
  static cw_alert_event_t v[N];
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < N; i++) {
      if (i == 0 || i == N - 1) { /* an alert raised first and cleared last */
        v[i] = ev_at(i ? CW_EV_CLEARED : CW_EV_RAISED, i ? CW_ALERT_CLEARED : CW_ALERT_OPEN,
                     T0 + i * 1000LL, 1, "", "power 800 W");
        v[i].id = 5000 + pass;
        continue;
      }
      cw_session_t s;
      memset(&s, 0, sizeof s);
      snprintf(s.station, sizeof s.station, "P%d%s", (i - 1) / 150, pass ? "b" : "a");
      s.socket = (uint8_t)((i - 1) % 150 + 1);
      s.start_ms = T0;
      s.end_ms = T0 + 60000;
      s.energy_wh = i;
      s.peak_w = 150;
      s.peak_t = NAN;
      s.readings = 3;
      s.end = CW_SEND_RESTART;
      if (pass == 1 && i == 200) s.end_ms = T0 - 1; /* refused: ends before it starts */
      cw_session_wrap(&s, &v[i]);
    }
    CHECK_EQ(cw__wdb_store_alerts(&db, v, N), CW_WDB_OK);
  }
  CHECK_STR(q(c, "SELECT count(*) || ' ' || sum(energy_wh) FROM charging_sessions WHERE station LIKE 'P_a'"),
            "300 45150");
  CHECK_STR(q(c, "SELECT count(*) || ' ' || sum(energy_wh) FROM charging_sessions WHERE station LIKE 'P_b'"),
            "299 44950");
  CHECK_STR(q(c, "SELECT string_agg(a.id || ':' || a.state || ':' || (SELECT count(*) FROM alert_events e"
                 " WHERE e.alert_id = a.id), ',' ORDER BY a.id) FROM alerts a WHERE a.id >= 5000"),
            "5000:cleared:2,5001:cleared:2");
  /* the connection is usable outside pipeline mode afterwards */
  CHECK_EQ(PQpipelineStatus(db.conn), PQ_PIPELINE_OFF);
  cw__wdb_close(&db);
  cw__wdb_free(&db);
  PQfinish(c);
  cw_fx_free(&f);
}
