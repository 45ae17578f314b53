/* test_schema.c - the schema (schema/NNN_*.sql) and the writer against a real
 * PostgreSQL (tests/pgtmp.c): migrations applied once and idempotently,
 * daily partitions, rows stored exactly once through the COPY path, rows the
 * database refuses isolated, alert rows per event, and the operator functions
 * with their NOTIFY. Each test starts from a fresh database. */
#include <libpq-fe.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "test.h"

typedef cw_fx_t fx_t;
#define q1 cw_fx_q1
#define exec_ok cw_fx_exec
#define fx_conn cw_fx_conn
#define fx_free cw_fx_free

static void reading(cw_reading_t *r, const char *station, int socket, int64_t ts_ms) {
  memset(r, 0, sizeof(*r));
  snprintf(r->station, sizeof(r->station), "%s", station);
  r->socket = (uint8_t)socket;
  r->ts_ms = ts_ms;
  r->w = 300.5f;
  r->t = 31.25f;
  r->have = CW_HAVE_W | CW_HAVE_T;
}

/* Push rows into the reading ring, run the writer over them. */
static int store_rows(fx_t *f, const cw_reading_t *rows, int n) {
  cw_writer_t *w;
  if (cw_fx_writer(f, &w)) return -1;
  for (int i = 0; i < n; i++)
    if (cw_ring_push(&f->ring, &rows[i], sizeof(rows[i])) < 0) return -1;
  if (cw_writer_start(w)) return -1;
  cw_writer_stop(w);
  cw_writer_free(w);
  return 0;
}

#define NEED_PG(f) CW_FX_NEED_PG(f, "cw_schema_test")

CW_TEST(schema_migrations_idempotent) {
  static fx_t f;
  cw_writer_t *w = NULL;
  PGconn *c = NULL;
  NEED_PG(&f);
  int64_t ids_before = atomic_load(&f.ids.next); /* fixture: the clock in µs */
  CHECK_EQ(cw_fx_writer(&f, &w), 0);
  CHECK_EQ(atomic_load(&f.m.db_connected), 1);
  cw_writer_free(w);
  c = fx_conn(&f);
  long long n1 = q1(c, "SELECT count(*) FROM schema_migrations");
  long long t1 = q1(c, "SELECT sum(extract(epoch FROM applied_at) * 1e6)::bigint FROM schema_migrations");
  CHECK(n1 >= 1);
  CHECK_EQ(cw_fx_writer(&f, &w), 0); /* second start: nothing re-applied */
  cw_writer_free(w);
  CHECK_EQ(q1(c, "SELECT count(*) FROM schema_migrations"), n1);
  CHECK_EQ(q1(c, "SELECT sum(extract(epoch FROM applied_at) * 1e6)::bigint FROM schema_migrations"), t1);
  CHECK_EQ(q1(c, "SELECT count(*) FROM unnest(ARRAY['stations','sockets','readings','readings_default',"
                 "'alerts','alert_events','active_alerts','last_reading']) AS t(n) WHERE to_regclass(n) IS NOT NULL"),
           8);
  /* the writer never lowers the alert ids (an empty table gives max(id) + 1 = 1) */
  CHECK(atomic_load(&f.ids.next) >= ids_before);
  PQfinish(c);
  fx_free(&f);
}

CW_TEST(schema_partitions_ahead) {
  static fx_t f;
  cw_writer_t *w = NULL;
  NEED_PG(&f);
  f.cfg.pg_partitions_ahead = 2;
  CHECK_EQ(cw_fx_writer(&f, &w), 0);
  cw_writer_free(w);
  PGconn *c = fx_conn(&f);
  /* yesterday .. today + 2, each named readings_YYYYMMDD (UTC) */
  CHECK_EQ(q1(c, "SELECT count(*) FROM generate_series(-1, 2) AS g(k) WHERE to_regclass('readings_' ||"
                 " to_char((now() AT TIME ZONE 'UTC')::date + g.k, 'YYYYMMDD')) IS NOT NULL"),
           4);
  CHECK_EQ(q1(c, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass"), 5);
  PQfinish(c);
  fx_free(&f);
}

CW_TEST(schema_default_partition_moves) {
  static fx_t f;
  cw_writer_t *w = NULL;
  NEED_PG(&f);
  CHECK_EQ(cw_fx_writer(&f, &w), 0);
  cw_writer_free(w);
  PGconn *c = fx_conn(&f);
  exec_ok(c, "INSERT INTO readings (ts, station, socket, w) VALUES ('2031-05-04 12:00+00', 'A', 1, 5)");
  CHECK_EQ(q1(c, "SELECT count(*) FROM readings_default"), 1);
  CHECK_EQ(q1(c, "SELECT cw_ensure_partition('2031-05-04')::int"), 1);
  CHECK_EQ(q1(c, "SELECT count(*) FROM readings_default"), 0);
  CHECK_EQ(q1(c, "SELECT count(*) FROM readings_20310504"), 1);
  CHECK_EQ(q1(c, "SELECT cw_ensure_partition('2031-05-04')::int"), 0);
  PQfinish(c);
  fx_free(&f);
}

CW_TEST(schema_rows_stored_once) {
  static fx_t f;
  static cw_reading_t rows[1000];
  NEED_PG(&f);
  int64_t t0 = ((int64_t)time(NULL) - 600) * 1000;
  for (int i = 0; i < 1000; i++) reading(&rows[i], i % 2 ? "ST-1" : "ST_2", i % 10 + 1, t0 + i);
  CHECK_EQ(store_rows(&f, rows, 1000), 0);
  CHECK_EQ(atomic_load(&f.m.rows_committed), 1000);
  CHECK_EQ(store_rows(&f, rows, 1000), 0); /* a replay: nothing new */
  CHECK_EQ(atomic_load(&f.m.rows_committed), 1000);
  PGconn *c = fx_conn(&f);
  CHECK_EQ(q1(c, "SELECT count(*) FROM readings"), 1000);
  CHECK_EQ(q1(c, "SELECT count(*) FROM stations WHERE code IN ('ST-1', 'ST_2')"), 2);
  CHECK_EQ(q1(c, "SELECT count(*) FROM sockets"), 10);
  /* last_ts is the max committed ts per socket: socket 10 of ST-1 got i = 999 */
  char sql[200];
  snprintf(sql, sizeof(sql),
           "SELECT floor(extract(epoch FROM last_ts) * 1000)::bigint - %lld FROM sockets"
           " WHERE station = 'ST-1' AND socket = 10", (long long)t0);
  CHECK_EQ(q1(c, sql), 999);
  CHECK_EQ(q1(c, "SELECT round(sum(w))::bigint FROM readings"), 300500);
  CHECK_EQ(q1(c, "SELECT count(*) FROM last_reading"), 10);
  PQfinish(c);
  fx_free(&f);
}

CW_TEST(schema_refused_rows_isolated) {
  static fx_t f;
  static cw_reading_t rows[64];
  NEED_PG(&f);
  int64_t t0 = ((int64_t)time(NULL) - 600) * 1000;
  for (int i = 0; i < 64; i++) reading(&rows[i], "BAD", i % 4 + 1, t0 + i);
  rows[17].socket = 0; /* readings.socket CHECK 1..255 */
  rows[40].socket = 0;
  CHECK_EQ(store_rows(&f, rows, 64), 0);
  CHECK_EQ(atomic_load(&f.m.rejects[CW_REJ_DB_REJECTED]), 2);
  CHECK_EQ(atomic_load(&f.m.rows_committed), 62);
  PGconn *c = fx_conn(&f);
  CHECK_EQ(q1(c, "SELECT count(*) FROM readings"), 62);
  PQfinish(c);
  fx_free(&f);
}

static void alert_ev(cw_alert_event_t *ev, cw_event_t e, cw_severity_t sev, cw_alert_state_t st,
                     int64_t ts_ms) {
  memset(ev, 0, sizeof(*ev));
  ev->id = 4242;
  ev->ts_ms = ts_ms;
  ev->recv_ms = ts_ms + 5;
  ev->value = 60 + 10 * (int)e;
  ev->threshold = sev == CW_SEV_CRITICAL ? 90 : 60;
  ev->kind = CW_KIND_THERMAL_RUNAWAY;
  ev->severity = sev;
  ev->event = e;
  ev->state = st;
  ev->socket = 3;
  snprintf(ev->station, sizeof(ev->station), "CX-0423");
  snprintf(ev->unit, sizeof(ev->unit), "C");
  snprintf(ev->message, sizeof(ev->message), "t %d C", (int)ev->value);
  if (e == CW_EV_ACKNOWLEDGED) snprintf(ev->by, sizeof(ev->by), "ops");
}

CW_TEST(schema_alert_rows_per_event) {
  static fx_t f;
  cw_alert_event_t ev[4];
  NEED_PG(&f);
  int64_t t = ((int64_t)time(NULL) - 600) * 1000;
  alert_ev(&ev[0], CW_EV_RAISED, CW_SEV_WARNING, CW_ALERT_OPEN, t);
  alert_ev(&ev[1], CW_EV_ESCALATED, CW_SEV_CRITICAL, CW_ALERT_OPEN, t + 1000);
  alert_ev(&ev[2], CW_EV_CLEARED, CW_SEV_CRITICAL, CW_ALERT_CLEARED, t + 61000);
  alert_ev(&ev[3], CW_EV_ACKNOWLEDGED, CW_SEV_CRITICAL, CW_ALERT_ACKNOWLEDGED, t + 70000);
  for (int round = 0; round < 2; round++) { /* the second round is a replay */
    cw_writer_t *w;
    CHECK_EQ(cw_fx_writer(&f, &w), 0);
    CHECK_EQ(cw_writer_start(w), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(cw_writer_store_alert(w, &ev[i]), 0);
    cw_writer_stop(w);
    cw_writer_free(w);
  }
  CHECK_EQ(atomic_load(&f.m.alerts_stored), 8);
  PGconn *c = fx_conn(&f);
  CHECK_EQ(q1(c, "SELECT count(*) FROM alert_events WHERE alert_id = 4242"), 4);
  CHECK_EQ(q1(c, "SELECT count(*) FROM alerts WHERE id = 4242 AND state = 'acknowledged'"
                 " AND severity = 'critical' AND acked_by = 'ops' AND escalated_at IS NOT NULL"
                 " AND cleared_at IS NOT NULL AND acked_at IS NOT NULL AND closed_at IS NULL"),
           1);
  CHECK_EQ(q1(c, "SELECT peak_value::int FROM alerts WHERE id = 4242"), 70);
  CHECK_EQ(q1(c, "SELECT threshold::int FROM alerts WHERE id = 4242"), 90);
  CHECK_EQ(q1(c, "SELECT count(*) FROM active_alerts WHERE id = 4242"), 1);
  /* next start seeds ids above the stored ones */
  CHECK(atomic_load(&f.ids.next) > 4242);
  PQfinish(c);
  fx_free(&f);
}

CW_TEST(schema_ack_close_notify) {
  static fx_t f;
  cw_writer_t *w = NULL;
  NEED_PG(&f);
  CHECK_EQ(cw_fx_writer(&f, &w), 0);
  cw_writer_free(w);
  PGconn *c = fx_conn(&f);
  exec_ok(c, "INSERT INTO alerts (id, station, socket, kind, severity) VALUES (7, 'CX-1', 2, 'overload', 'warning')");
  exec_ok(c, "LISTEN cw_alert_cmd");
  CHECK_EQ(q1(c, "SELECT cw_ack(7, 'bob')::int"), 1);
  CHECK_EQ(q1(c, "SELECT cw_ack(7, 'bob')::int"), 0); /* already acknowledged */
  CHECK_EQ(q1(c, "SELECT cw_close(7, 'eve')::int"), 1);
  CHECK_EQ(q1(c, "SELECT cw_close(7, 'eve')::int"), 0);
  CHECK_EQ(q1(c, "SELECT cw_ack(8, 'bob')::int"), -1); /* no such alert: an error (003) */
  /* who did it is the database role; the name given is kept beside it (003) */
  CHECK_EQ(q1(c, "SELECT count(*) FROM alerts WHERE id = 7 AND state = 'closed' AND acked_by = session_user"
                 " AND closed_by = session_user"),
           1);
  CHECK_EQ(q1(c, "SELECT count(*) FROM alert_events WHERE alert_id = 7 AND detail->>'claimed_by' IN ('bob', 'eve')"), 2);
  CHECK_EQ(q1(c, "SELECT count(*) FROM active_alerts WHERE id = 7"), 0);
  PQconsumeInput(c);
  PGnotify *n1 = PQnotifies(c), *n2 = PQnotifies(c), *n3 = PQnotifies(c);
  CHECK(n1 && n2 && !n3);
  CHECK(strstr(n1->extra, "\"action\" : \"ack\"") && strstr(n1->extra, "\"station\" : \"CX-1\""));
  CHECK(strstr(n2->extra, "\"action\" : \"close\"") && strstr(n2->extra, "\"claimed_by\" : \"eve\""));
  PQfreemem(n1);
  PQfreemem(n2);
  PQfinish(c);
  fx_free(&f);
}
