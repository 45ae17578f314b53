/* test_schema_ops.c - schema/003_ops.sql against a real PostgreSQL
 * (tests/pgtmp.c): the alert lifecycle functions by id and by short
 * reference with the database role recorded and their NOTIFYs, references
 * filled by the database and agreeing with lib/alert_ref.c, time zones from
 * old offsets, charging sessions stored idempotently, hourly rollups with
 * exact values from a known set of readings, and retention dropping whole
 * partitions. The migrations are the ones embedded in the daemon. */
#include <libpq-fe.h>
#include <stdlib.h>
#include <time.h>

#include "alert_ref.h"
#include "test.h"

typedef struct {
  const char *name;
  const char *sql;
} mig_t;
extern const mig_t cw_migrations[]; /* build/schema_sql.c (schema/embed.sh) */
extern const size_t cw_migrations_count;

static int exec_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) fprintf(stderr, "    %.80s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : -1;
}

/* First value of the first row as text into out ("" on no row; "ERROR
 * <sqlstate>" when the statement failed). */
static const char *qs(PGconn *c, const char *sql, char *out, size_t cap) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) == PGRES_TUPLES_OK)
    snprintf(out, cap, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
  else
    snprintf(out, cap, "ERROR %s", PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "?");
  PQclear(r);
  return out;
}

static long long q1(PGconn *c, const char *sql) {
  char v[64];
  qs(c, sql, v, sizeof v);
  return v[0] && v[0] != 'E' ? strtoll(v, NULL, 10) : -1;
}

/* Applies the migrations whose names sort at or below upto ("" = all). */
static int migrate(PGconn *c, const char *upto) {
  for (size_t i = 0; i < cw_migrations_count && cw_migrations[i].name; i++) {
    if (upto[0] && strcmp(cw_migrations[i].name, upto) > 0) break;
    if (exec_ok(c, "SET client_min_messages = warning") || exec_ok(c, cw_migrations[i].sql)) return -1;
  }
  return 0;
}

/* Fresh database cw_ops_test; migrated up to upto. NULL without a server. */
static PGconn *fresh(const char *upto) {
  const char *base = cw_test_pg();
  char ci[600];
  if (!base) return NULL;
  PGconn *c = PQconnectdb(base);
  if (PQstatus(c) != CONNECTION_OK) {
    PQfinish(c);
    return NULL;
  }
  exec_ok(c, "SET client_min_messages = warning");
  exec_ok(c, "DROP DATABASE IF EXISTS cw_ops_test WITH (FORCE)");
  exec_ok(c, "CREATE DATABASE cw_ops_test");
  PQfinish(c);
  snprintf(ci, sizeof ci, "%s dbname=cw_ops_test", base);
  c = PQconnectdb(ci);
  if (PQstatus(c) != CONNECTION_OK || migrate(c, upto)) {
    PQfinish(c);
    return NULL;
  }
  return c;
}

#define NEED_DB(c, upto)                                    \
  PGconn *c = fresh(upto);                                  \
  do {                                                      \
    if (!c) {                                               \
      fprintf(stderr, "    (skipped: no PostgreSQL)\n");    \
      return;                                               \
    }                                                       \
  } while (0)

static int count_notifies(PGconn *c, const char *channel, const char *needle) {
  int n = 0;
  PGnotify *nt;
  PQconsumeInput(c);
  while ((nt = PQnotifies(c)) != NULL) {
    if (!strcmp(nt->relname, channel) && (!needle || strstr(nt->extra, needle))) n++;
    PQfreemem(nt);
  }
  return n;
}

CW_TEST(schema_ops_migrations_idempotent) {
  NEED_DB(c, "");
  CHECK_EQ(migrate(c, ""), 0); /* every migration again: nothing fails */
  CHECK_EQ(q1(c, "SELECT count(*) FROM unnest(ARRAY['charging_sessions','readings_hourly',"
                 "'retention_log','alert_ref_days','station_daily']) AS t(n) WHERE to_regclass(n) IS NOT NULL"),
           5);
  CHECK_EQ(q1(c, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'alerts'"
                 " AND column_name IN ('ref', 'rectified_at', 'rectified_by', 'rectify_note')"),
           4);
  PQfinish(c);
}

CW_TEST(schema_ops_lifecycle_by_id_and_ref) {
  char v[512], sql[300], ref1[CW_ALERT_REF_MAX], ref2[CW_ALERT_REF_MAX], me[64];
  NEED_DB(c, "");
  int32_t today = cw_alert_ref_day((int64_t)time(NULL) * 1000);
  CHECK(cw_alert_ref_format(ref1, sizeof ref1, today, 1) > 0);
  CHECK(cw_alert_ref_format(ref2, sizeof ref2, today, 2) > 0);
  CHECK_EQ(exec_ok(c, "INSERT INTO alerts (id, station, socket, kind, severity) VALUES"
                      " (1795971244435718, 'CX-1', 2, 'overload', 'warning'),"
                      " (1795971244435719, 'CX-1', 3, 'thermal_runaway', 'critical')"),
           0);
  /* the database numbers them like the daemon would */
  CHECK_STR(qs(c, "SELECT ref FROM alerts WHERE id = 1795971244435718", v, sizeof v), ref1);
  CHECK_STR(qs(c, "SELECT ref FROM alerts WHERE id = 1795971244435719", v, sizeof v), ref2);
  qs(c, "SELECT session_user", me, sizeof me);
  CHECK_EQ(exec_ok(c, "LISTEN cw_alert_cmd"), 0);
  CHECK_EQ(exec_ok(c, "LISTEN cw_alert_events"), 0);

  /* ack by the reference as typed: lower case, no zeros */
  snprintf(sql, sizeof sql, "SELECT cw_ack('a-%.4s-1', 'night shift')::int", ref1 + 2);
  CHECK_EQ(q1(c, sql), 1);
  CHECK_EQ(q1(c, sql), 0); /* already acknowledged */
  CHECK_STR(qs(c, "SELECT state || '/' || acked_by FROM alerts WHERE id = 1795971244435718", v, sizeof v),
            strcat(strcpy(sql, "acknowledged/"), me));
  CHECK_STR(qs(c, "SELECT detail->>'claimed_by' FROM alert_events WHERE alert_id = 1795971244435718"
                  " AND event = 'acknowledged'", v, sizeof v),
            "night shift");
  /* rectify by numeric id with a note, then close by reference */
  CHECK_EQ(q1(c, "SELECT cw_rectify(1795971244435718, 'replaced the socket')::int"), 1);
  CHECK_EQ(q1(c, "SELECT count(*) FROM alerts WHERE id = 1795971244435718 AND state = 'rectified'"
                 " AND rectify_note = 'replaced the socket' AND rectified_by = session_user"
                 " AND rectified_at IS NOT NULL"),
           1);
  snprintf(sql, sizeof sql, "SELECT cw_close('%s', NULL, 'done')::int", ref1);
  CHECK_EQ(q1(c, sql), 1);
  CHECK_EQ(q1(c, sql), 0); /* closed: found by reference, nothing to do */
  CHECK_EQ(q1(c, "SELECT cw_rectify('1795971244435718', 'late')::int"), 0);
  CHECK_EQ(q1(c, "SELECT count(*) FROM alerts WHERE id = 1795971244435718 AND state = 'closed'"
                 " AND closed_by = session_user"),
           1);
  CHECK_STR(qs(c, "SELECT string_agg(event, ',' ORDER BY ts) FROM alert_events WHERE alert_id = 1795971244435718",
               v, sizeof v),
            "acknowledged,rectified,closed");
  /* the daemon's own record of the close (its clock) is absorbed; other events are not */
  CHECK_EQ(exec_ok(c, "INSERT INTO alert_events (alert_id, ts, event, detail) VALUES"
                      " (1795971244435718, now() + interval '2 seconds', 'closed', '{\"by\": \"x\"}'),"
                      " (1795971244435718, now() + interval '2 seconds', 'cleared', NULL)"), 0);
  CHECK_STR(qs(c, "SELECT string_agg(event, ',' ORDER BY ts) FROM alert_events WHERE alert_id = 1795971244435718",
               v, sizeof v),
            "acknowledged,rectified,closed,cleared");
  /* the second alert: rectified straight from open also counts as acknowledged */
  CHECK_EQ(q1(c, "SELECT cw_rectify('1795971244435719', 'cable fixed', 'bob')::int"), 1);
  CHECK_EQ(q1(c, "SELECT count(*) FROM alerts WHERE id = 1795971244435719 AND acked_by = session_user"
                 " AND state = 'rectified'"),
           1);
  /* the daemon's late copy of the acknowledgement does not undo rectified */
  CHECK_EQ(exec_ok(c, "UPDATE alerts SET state = 'acknowledged' WHERE id = 1795971244435719"), 0);
  CHECK_STR(qs(c, "SELECT state FROM alerts WHERE id = 1795971244435719", v, sizeof v), "rectified");
  /* 001's form still works; an unknown id or reference is an error */
  CHECK_EQ(q1(c, "SELECT cw_close(1795971244435719, 'eve')::int"), 1);
  CHECK_STR(qs(c, "SELECT cw_ack(8, 'bob')", v, sizeof v), "ERROR P0002");
  CHECK_STR(qs(c, "SELECT cw_ack('A-0101-9999')", v, sizeof v), "ERROR P0002");
  CHECK_STR(qs(c, "SELECT cw_close('nonsense')", v, sizeof v), "ERROR P0002");
  CHECK_STR(qs(c, "SELECT count(*) FROM active_alerts", v, sizeof v), "0");

  /* NOTIFY: one command per action for the daemon, one event per row stored */
  CHECK_EQ(exec_ok(c, "SELECT 1"), 0);
  PQconsumeInput(c);
  int acks = 0, rects = 0, closes = 0, events = 0, with_ref = 0;
  PGnotify *nt;
  while ((nt = PQnotifies(c)) != NULL) {
    if (!strcmp(nt->relname, "cw_alert_cmd")) {
      acks += strstr(nt->extra, "\"action\" : \"ack\"") != NULL;
      rects += strstr(nt->extra, "\"action\" : \"rectify\"") != NULL;
      closes += strstr(nt->extra, "\"action\" : \"close\"") != NULL;
      snprintf(sql, sizeof sql, "\"by\" : \"%s\"", me);
      with_ref += strstr(nt->extra, "\"ref\" : \"A-") && strstr(nt->extra, sql) &&
                  strstr(nt->extra, "\"station\" : \"CX-1\"") && strstr(nt->extra, "\"ts\" : ");
    } else if (!strcmp(nt->relname, "cw_alert_events")) {
      events += strstr(nt->extra, "\"alert_id\" : 179597124443571") != NULL;
    }
    PQfreemem(nt);
  }
  CHECK_EQ(acks, 1);
  CHECK_EQ(rects, 2);
  CHECK_EQ(closes, 2);
  CHECK_EQ(with_ref, 5);
  CHECK_EQ(events, 6);
  PQfinish(c);
}

CW_TEST(schema_ops_event_notify_and_refs) {
  char v[200], sql[300], ref[CW_ALERT_REF_MAX];
  NEED_DB(c, "");
  int32_t today = cw_alert_ref_day((int64_t)time(NULL) * 1000);
  /* the daemon's own reference: recorded in the day's counter */
  CHECK(cw_alert_ref_format(ref, sizeof ref, today, 7) > 0);
  snprintf(sql, sizeof sql, "INSERT INTO alerts (id, station, socket, kind, severity, ref)"
                            " VALUES (10, 'S', 1, 'offline', 'warning', '%s')", ref);
  CHECK_EQ(exec_ok(c, sql), 0);
  snprintf(sql, sizeof sql, "SELECT cw_alert_ref_last('%s'::date)", qs(c, "SELECT (now() AT TIME ZONE 'UTC')::date", v, sizeof v));
  CHECK_EQ(q1(c, sql), 7);
  /* a row without one continues the day; a taken one is replaced */
  CHECK_EQ(exec_ok(c, "INSERT INTO alerts (id, station, socket, kind, severity) VALUES (11, 'S', 2, 'offline', 'warning')"), 0);
  CHECK(cw_alert_ref_format(ref, sizeof ref, today, 8) > 0);
  CHECK_STR(qs(c, "SELECT ref FROM alerts WHERE id = 11", v, sizeof v), ref);
  snprintf(sql, sizeof sql, "INSERT INTO alerts (id, station, socket, kind, severity, ref)"
                            " VALUES (12, 'S', 3, 'offline', 'warning', '%s')", ref);
  CHECK_EQ(exec_ok(c, sql), 0);
  CHECK(cw_alert_ref_format(ref, sizeof ref, today, 9) > 0);
  CHECK_STR(qs(c, "SELECT ref FROM alerts WHERE id = 12", v, sizeof v), ref);
  /* an upsert of the same alert keeps its reference */
  CHECK_EQ(exec_ok(c, "INSERT INTO alerts (id, station, socket, kind, severity, ref) VALUES (12, 'S', 3, 'offline',"
                      " 'critical', NULL) ON CONFLICT (id) DO UPDATE SET severity = excluded.severity"), 0);
  CHECK_STR(qs(c, "SELECT ref FROM alerts WHERE id = 12", v, sizeof v), ref);
  /* SQL and C format alike past 9999 */
  CHECK(cw_alert_ref_format(ref, sizeof ref, 0, 12345) > 0);
  CHECK_STR(qs(c, "SELECT cw_alert_ref('1970-01-01', 12345)", v, sizeof v), ref);
  /* every alert_events row stored, whoever stores it, is announced */
  CHECK_EQ(exec_ok(c, "LISTEN cw_alert_events"), 0);
  CHECK_EQ(exec_ok(c, "INSERT INTO alert_events (alert_id, ts, event, severity, value) VALUES"
                      " (10, '2026-11-29 08:00:00.123+00', 'raised', 'warning', 1),"
                      " (11, '2026-11-29 08:00:01+00', 'raised', 'warning', 1)"),
           0);
  CHECK_EQ(count_notifies(c, "cw_alert_events", "\"ts_us\" : 1795939200123000"), 1);
  CHECK_EQ(exec_ok(c, "INSERT INTO alert_events (alert_id, ts, event) VALUES (10, now(), 'cleared')"), 0);
  CHECK_EQ(count_notifies(c, "cw_alert_events", "\"event\" : \"cleared\""), 1);
  PQfinish(c);
}

CW_TEST(schema_ops_timezones_from_offsets) {
  char v[200];
  NEED_DB(c, "002");
  CHECK_EQ(exec_ok(c, "INSERT INTO stations (code, utc_offset_min) VALUES ('SH', 480), ('GMT', 0),"
                      " ('NY', -300), ('IN', 330), ('NF', -150), ('AU', 600)"),
           0);
  CHECK_EQ(migrate(c, ""), 0);
  CHECK_STR(qs(c, "SELECT string_agg(code || '=' || timezone, ' ' ORDER BY code) FROM stations", v, sizeof v),
            "AU=Etc/GMT-10 GMT=UTC IN=Asia/Kolkata NF=<-0230>+02:30 NY=Etc/GMT+5 SH=Asia/Shanghai");
  /* each zone gives back the offset it came from */
  CHECK_EQ(q1(c, "SELECT count(*) FROM stations WHERE extract(epoch FROM"
                 " ('2026-01-15 12:00'::timestamp AT TIME ZONE timezone) - '2026-01-15 12:00+00'::timestamptz)"
                 " = -60 * utc_offset_min"),
           6);
  CHECK_EQ(exec_ok(c, "INSERT INTO stations (code) VALUES ('NEW')"), 0);
  CHECK_STR(qs(c, "SELECT timezone FROM stations WHERE code = 'NEW'", v, sizeof v), "Asia/Shanghai");
  CHECK_STR(qs(c, "UPDATE stations SET timezone = 'Mars/Olympus' WHERE code = 'NEW' RETURNING 1", v, sizeof v),
            "ERROR 22023");
  CHECK_EQ(q1(c, "SELECT count(*) FROM stations WHERE utc_offset_min = -300"), 1); /* kept */
  /* the log's times: UTC, and local with the offset of that date (DST) */
  CHECK_STR(qs(c, "SELECT cw_utc_text('2026-11-29 08:00:00.123+00')", v, sizeof v), "2026-11-29T08:00:00.123Z");
  CHECK_STR(qs(c, "SELECT cw_local_text('2026-11-29 08:00:00.123+00', 'Asia/Shanghai')", v, sizeof v),
            "2026-11-29T16:00:00.123+08:00");
  CHECK_STR(qs(c, "SELECT cw_local_text('2026-07-01 12:00+00', 'America/St_Johns') || ' ' ||"
                  " cw_local_text('2026-01-01 12:00+00', 'America/St_Johns')", v, sizeof v),
            "2026-07-01T09:30:00.000-02:30 2026-01-01T08:30:00.000-03:30");
  PQfinish(c);
}

CW_TEST(schema_ops_sessions_idempotent) {
  char v[200];
  NEED_DB(c, "");
  const char *s1 = "SELECT cw_session_store('CX-1', 4, '2026-11-29 01:00+00', '2026-11-29 03:00+00',"
                   " 512.5, 310, 36.5, 'restart', 240)";
  const char *s2 = "SELECT cw_session_store('CX-1', 4, '2026-11-29 01:00+00', '2026-11-29 05:30+00',"
                   " 980.25, 320, 38, 'full', 540)";
  CHECK_EQ(exec_ok(c, s1), 0);
  CHECK_EQ(exec_ok(c, s1), 0);
  CHECK_EQ(q1(c, "SELECT count(*) FROM charging_sessions"), 1);
  CHECK_EQ(exec_ok(c, s2), 0); /* the same session, finished later */
  CHECK_EQ(q1(c, "SELECT count(*) FROM charging_sessions"), 1);
  CHECK_STR(qs(c, "SELECT energy_wh || ' ' || end_reason || ' ' || readings || ' ' ||"
                  " extract(epoch FROM ended_at - started_at) FROM charging_sessions",
               v, sizeof v),
            "980.25 full 540 16200.000000");
  CHECK_STR(qs(c, "SELECT cw_session_store('CX-1', 4, '2026-11-29 06:00+00', '2026-11-29 07:00+00',"
                  " 1, 1, 1, 'exploded', 1)", v, sizeof v),
            "ERROR 23514");
  PQfinish(c);
}

/* The known readings of one socket (UTC, 2031-05-04):
 *   10:00:00 w 300 wh 100   t 30 charging     10:00:30 w 310 wh 102.5 t 31 charging
 *   10:59:30 w 320 wh 110   t 35 charging     11:00:30 w 5   wh 111   t 33 full
 *   11:20:00 w 0   wh 0     t 28 idle (counter restarts)
 *   11:30:00 w 200 wh 4     t 29 charging (last)
 * hour 10: energy 0 + 2.5 + 7.5 = 10, minutes 0.5 + 10 (capped) + 1 = 11.5;
 * hour 11: energy 1 + 0 + 4 = 5, minutes 0 (5 W full, idle, last reading). */
static int known_readings(PGconn *c) {
  if (exec_ok(c, "SELECT cw_ensure_partitions('2031-05-04', '2031-05-05')")) return -1;
  return exec_ok(c, "INSERT INTO readings (ts, station, socket, w, wh, t, state) VALUES"
                    " ('2031-05-04 10:00:00+00', 'R1', 1, 300, 100, 30, 1),"
                    " ('2031-05-04 10:00:30+00', 'R1', 1, 310, 102.5, 31, 1),"
                    " ('2031-05-04 10:59:30+00', 'R1', 1, 320, 110, 35, 1),"
                    " ('2031-05-04 11:00:30+00', 'R1', 1, 5, 111, 33, 2),"
                    " ('2031-05-04 11:20:00+00', 'R1', 1, 0, 0, 28, 0),"
                    " ('2031-05-04 11:30:00+00', 'R1', 1, 200, 4, 29, 1),"
                    " ('2031-05-04 11:10:00+00', 'R1', 2, 20, NULL, 25, NULL)");
}

static const char HOURLY[] =
    "SELECT string_agg(format('%s/%s %s e=%s t=%s..%s w=%s m=%s n=%s', station, socket,"
    " to_char(hour AT TIME ZONE 'UTC', 'HH24'), energy_wh, t_min, t_max, w_max, minutes_charging, readings),"
    " '; ' ORDER BY station, socket, hour) FROM readings_hourly";

CW_TEST(schema_ops_rollup_exact) {
  char v[600];
  const char *want = "R1/1 10 e=10 t=30..35 w=320 m=11.5 n=3; R1/1 11 e=5 t=28..33 w=200 m=0 n=3;"
                     " R1/2 11 e=0 t=25..25 w=20 m=0 n=1";
  NEED_DB(c, "");
  CHECK_EQ(known_readings(c), 0);
  /* the second hour alone takes its baseline from the reading before it */
  CHECK_EQ(q1(c, "SELECT cw_rollup_readings('2031-05-04 11:00+00', '2031-05-04 12:00+00')"), 2);
  CHECK_STR(qs(c, HOURLY, v, sizeof v), "R1/1 11 e=5 t=28..33 w=200 m=0 n=3; R1/2 11 e=0 t=25..25 w=20 m=0 n=1");
  /* a part of an hour widens to the whole hour */
  CHECK_EQ(q1(c, "SELECT cw_rollup_readings('2031-05-04 10:15+00', '2031-05-04 10:16+00')"), 1);
  CHECK_STR(qs(c, HOURLY, v, sizeof v), want);
  /* the whole day again: same rows, same values */
  CHECK_EQ(q1(c, "SELECT cw_rollup_readings('2031-05-04 00:00+00', '2031-05-05 00:00+00')"), 3);
  CHECK_STR(qs(c, HOURLY, v, sizeof v), want);
  CHECK_EQ(q1(c, "SELECT count(*) FROM readings_hourly"), 3);
  /* the daily view in the station's zone (auto-registered: Asia/Shanghai) */
  CHECK_EQ(exec_ok(c, "INSERT INTO stations (code) VALUES ('R1')"), 0);
  CHECK_STR(qs(c, "SELECT day || ' ' || energy_wh || ' ' || minutes_charging || ' ' || readings FROM station_daily",
               v, sizeof v),
            "2031-05-04 15 11.5 7");
  PQfinish(c);
}

CW_TEST(schema_ops_retention_drops_partitions) {
  char v[600];
  NEED_DB(c, "");
  CHECK_EQ(exec_ok(c, "SELECT cw_ensure_partitions((now() AT TIME ZONE 'UTC')::date - 40,"
                      " (now() AT TIME ZONE 'UTC')::date - 39)"),
           0);
  CHECK_EQ(exec_ok(c, "SELECT cw_ensure_partition((now() AT TIME ZONE 'UTC')::date)"), 0);
  CHECK_EQ(exec_ok(c, "INSERT INTO readings (ts, station, socket, w, wh, t, state) VALUES"
                      " (date_trunc('day', now() - interval '40 days') + interval '3 hours', 'OLD', 1, 100, 10, 20, 1),"
                      " (date_trunc('day', now() - interval '40 days') + interval '3 hours 1 minute', 'OLD', 1, 100, 12, 21, 1),"
                      " (now(), 'NEW', 1, 100, 10, 20, 1)"),
           0);
  CHECK_EQ(exec_ok(c, "SET client_min_messages = warning"), 0);
  CHECK_STR(qs(c, "SELECT string_agg(rows::text, ',' ORDER BY day) FROM cw_drop_old_partitions(30)", v, sizeof v),
            "2,0");
  CHECK_EQ(q1(c, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass"), 2); /* today + default */
  CHECK_EQ(q1(c, "SELECT count(*) FROM readings"), 1);
  /* the day's figures survive in the rollup; the drop is logged */
  CHECK_STR(qs(c, "SELECT energy_wh || ' ' || minutes_charging || ' ' || readings FROM readings_hourly"
                  " WHERE station = 'OLD'", v, sizeof v),
            "2 1 2");
  CHECK_EQ(q1(c, "SELECT count(*) FROM retention_log WHERE partition ~ '^readings_[0-9]{8}$' AND dropped_by = session_user"), 2);
  CHECK_EQ(q1(c, "SELECT count(*) FROM cw_drop_old_partitions(30)"), 0); /* nothing left to drop */
  CHECK_STR(qs(c, "SELECT * FROM cw_drop_old_partitions(0)", v, sizeof v), "ERROR 22023");
  PQfinish(c);
}
