/* test_detect_policy.c - detection engine driven the way the daemon drives
 * it: policies changed mid-stream (SIGHUP -> cw_engine_set_socket /
 * set_station / set_cfg) must be honoured both ways, i.e. an alert raised
 * under one policy clears once the policy no longer calls for it; and the
 * offline detector swept once a second on receive time (whole station silent,
 * single-socket stations, intervals that grow); restored alerts after a restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_detect_util.h"

#define OFF CW_KIND_OFFLINE
#define OV CW_KIND_OVERLOAD
#define ON CW_KIND_OVERNIGHT_CHARGING
#define TH CW_KIND_THERMAL_RUNAWAY
#define WARN CW_SEV_WARNING
#define CRIT CW_SEV_CRITICAL

static const int64_t T0 = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS; /* 10:00 local: not night */

/* One reading with only w, at ts, received at ts. */
static cw_reject_t charge(det_rec_t *r, const char *st, uint8_t so, int64_t ts, float w) {
  cw_reading_t a = det_reading(st, so, ts);
  a.have = CW_HAVE_W;
  a.w = w;
  return cw_engine_process(r->e, &a, ts);
}

/* tests/it/test_policy.sh in miniature. A socket charges every 10 s; it is
 * made forbidden before the 210 s reading (raised by it: the session is
 * already confirmed) and allowed again before the 410 s one, still charging: the
 * alert clears hold_s (60 s) after the last reading that showed the
 * condition (400 s), and nothing is raised again. */
CW_TEST(detect_policy_forbidden_lifted_clears) {
  det_rec_t *r = det_new(NULL);
  cw_socket_policy_t allow = {.rated_w = 0, .forbidden = false};
  cw_socket_policy_t forbid = {.rated_w = 0, .forbidden = true};
  CHECK_EQ(cw_engine_set_socket(r->e, "POL1", 2, &allow), 0);
  for (int s = 0; s <= 900; s += 10) {
    if (s == 210) CHECK_EQ(cw_engine_set_socket(r->e, "POL1", 2, &forbid), 0);
    if (s == 410) CHECK_EQ(cw_engine_set_socket(r->e, "POL1", 2, &allow), 0);
    CHECK_EQ(charge(r, "POL1", 2, T0 + (int64_t)s * 1000, 200), CW_REJ_OK);
  }
  det_exp_t exp[] = {{ON, WARN, CW_EV_RAISED, 210, 0, 2}, {ON, WARN, CW_EV_CLEARED, 460, 0, 2}};
  int ok = det_match(r, T0, exp, 2);
  size_t open = cw_engine_open_alerts(r->e);
  det_free(r);
  CHECK(ok);
  CHECK_EQ(open, 0);
}

/* Forbidden throughout; the charger is unplugged at 300 s (0 W from 310 s):
 * the session ends after 2 min below charging_w (430 s) and the alert clears
 * hold_s after the last reading of the session (420 s -> 480 s). A new
 * session after the cool-down is a new alert. */
CW_TEST(detect_policy_forbidden_session_end_clears) {
  det_rec_t *r = det_new(NULL);
  cw_socket_policy_t forbid = {.rated_w = 0, .forbidden = true};
  CHECK_EQ(cw_engine_set_socket(r->e, "POL2", 1, &forbid), 0);
  for (int s = 0; s <= 1500; s += 10) {
    float w = (s <= 300 || s >= 1000) ? 200.0f : 0.0f;
    CHECK_EQ(charge(r, "POL2", 1, T0 + (int64_t)s * 1000, w), CW_REJ_OK);
  }
  det_exp_t exp[] = {{ON, WARN, CW_EV_RAISED, 10, 0, 1},
                     {ON, WARN, CW_EV_CLEARED, 480, 0, 1},
                     {ON, WARN, CW_EV_RAISED, 1010, 0, 1}};
  int ok = det_match(r, T0, exp, 3);
  int64_t id0 = r->n == 3 ? r->ev[0].id : 0, id2 = r->n == 3 ? r->ev[2].id : 0;
  det_free(r);
  CHECK(ok);
  CHECK(id0 != id2); /* 1010 s is past the 300 s cool-down after 480 s */
}

/* Station overnight_allowed false -> true (night window around the
 * readings) while charging goes on: the night warning clears, once. */
CW_TEST(detect_policy_overnight_allowed_again_clears) {
  det_rec_t *r = det_new(NULL);
  cw_station_policy_t sp;
  cw_station_policy_defaults(&sp);
  int64_t t0 = DET_MIDNIGHT_MS + 23 * DET_HOUR_MS; /* 23:00 local, in 22:00-06:00 */
  sp.overnight_allowed = false;
  CHECK_EQ(cw_engine_set_station(r->e, "NGT1", &sp), 0);
  for (int s = 0; s <= 1200; s += 10) {
    if (s == 600) {
      sp.overnight_allowed = true;
      CHECK_EQ(cw_engine_set_station(r->e, "NGT1", &sp), 0);
    }
    CHECK_EQ(charge(r, "NGT1", 1, t0 + (int64_t)s * 1000, 200), CW_REJ_OK);
  }
  det_exp_t exp[] = {{ON, WARN, CW_EV_RAISED, 300, 0, 1}, {ON, WARN, CW_EV_CLEARED, 650, 0, 1}};
  int ok = det_match(r, t0, exp, 2);
  det_free(r);
  CHECK(ok);
}

/* The night window moved at reload: the "charging in the night window"
 * time restarts from the first charging reading inside the new window, so
 * minutes charged under the old window do not count towards night_min_s. */
CW_TEST(detect_policy_night_window_moved) {
  det_rec_t *r = det_new(NULL);
  cw_station_policy_t sp;
  cw_station_policy_defaults(&sp);
  int64_t t0 = DET_MIDNIGHT_MS + 23 * DET_HOUR_MS; /* 23:00 local */
  sp.overnight_allowed = false;
  sp.night_start_min = 22 * 60 + 50; /* 22:50-06:00: 23:00 is inside */
  CHECK_EQ(cw_engine_set_station(r->e, "NGT2", &sp), 0);
  for (int s = 0; s <= 1200; s += 10) {
    if (s == 200) { /* before night_min_s: now 23:00-06:00, still inside */
      sp.night_start_min = 23 * 60;
      CHECK_EQ(cw_engine_set_station(r->e, "NGT2", &sp), 0);
    }
    CHECK_EQ(charge(r, "NGT2", 1, t0 + (int64_t)s * 1000, 200), CW_REJ_OK);
  }
  det_exp_t exp[] = {{ON, WARN, CW_EV_RAISED, 500, 0, 1}};
  int ok = det_match(r, t0, exp, 1);
  det_free(r);
  CHECK(ok);
}

/* breaker_w set to 0 (unknown) at reload while the station sum is above
 * 80 % of the old breaker: the station overload alert clears after hold_s
 * instead of staying open forever. */
CW_TEST(detect_policy_breaker_removed_clears) {
  det_rec_t *r = det_new(NULL);
  cw_station_policy_t sp;
  cw_station_policy_defaults(&sp);
  sp.breaker_w = 2000;
  CHECK_EQ(cw_engine_set_station(r->e, "BRK1", &sp), 0);
  for (int s = 0; s <= 300; s += 10) {
    if (s == 100) {
      sp.breaker_w = 0;
      CHECK_EQ(cw_engine_set_station(r->e, "BRK1", &sp), 0);
    }
    for (uint8_t k = 1; k <= 5; k++)
      CHECK_EQ(charge(r, "BRK1", k, T0 + (int64_t)s * 1000 + k, 390), CW_REJ_OK);
  }
  det_exp_t exp[] = {{OV, WARN, CW_EV_RAISED, 0.005, 0, 0},
                     {OV, WARN, CW_EV_CLEARED, 150, 0.01, 0}};
  int ok = det_match(r, T0, exp, 2);
  det_free(r);
  CHECK(ok);
}

/* Rise rule thresholds changed at reload: the consecutive-rise count
 * gathered under the old ones does not carry over. Before: 2 C/min but 100
 * evaluations needed (never met; the count climbs). After: 2.5 C/min three
 * times in a row, so the 3 C/min ramp raises at the third evaluation after
 * the reload, not at the first. */
CW_TEST(detect_policy_rise_threshold_reload) {
  det_rec_t *r = det_new(NULL);
  cw_detect_cfg_t c;
  cw_detect_cfg_defaults(&c);
  c.thermal_rise_warn_count = 100;
  cw_engine_set_cfg(r->e, &c);
  /* 30 C + 3 C/min at 10 s: evaluations from ~50 s, all at ~3 C/min */
  int s = 0;
  for (; s <= 200; s += 10) {
    cw_reading_t a = det_reading("TRS1", 1, T0 + (int64_t)s * 1000);
    a.have = CW_HAVE_T;
    a.t = 30.0f + 3.0f * (float)s / 60.0f;
    CHECK_EQ(det_feed(r, &a), CW_REJ_OK);
  }
  CHECK_EQ(r->n, 0);
  c.thermal_rise_warn_c_min = 2.5;
  c.thermal_rise_warn_count = 3;
  cw_engine_set_cfg(r->e, &c);
  for (; s <= 260; s += 10) {
    cw_reading_t a = det_reading("TRS1", 1, T0 + (int64_t)s * 1000);
    a.have = CW_HAVE_T;
    a.t = 30.0f + 3.0f * (float)s / 60.0f;
    CHECK_EQ(det_feed(r, &a), CW_REJ_OK);
  }
  /* three evaluations under the new thresholds: 210, 220, 230 s */
  det_exp_t exp[] = {{TH, WARN, CW_EV_RAISED, 230, 0, 1}};
  int ok = det_match(r, T0, exp, 1);
  det_free(r);
  CHECK(ok);
}

/* ------------------------------------------------------------ offline */

/* As the daemon runs it: readings at receive time, a sweep each second. */
static det_rec_t *off_engine(double offline_min_s) {
  cw_detect_cfg_t c;
  cw_detect_cfg_defaults(&c);
  c.offline_min_s = offline_min_s;
  return det_new(&c);
}

/* tests/it/test_alerts.sh OFF1: two sockets every 1 s (offline_min_s 10), socket 1
 * stops at 3 s, socket 2 at 23 s; both back at 60 s. Socket 1: warning
 * (socket 2 still talks). Then the station: one critical on socket 0, no
 * further per-socket alert; it clears hold_s after the readings resume. */
CW_TEST(detect_offline_station_two_sockets_sweep) {
  det_rec_t *r = off_engine(10);
  for (int s = 0; s <= 200; s++) {
    int64_t now = T0 + (int64_t)s * 1000;
    if (s <= 3 || s >= 60) CHECK_EQ(charge(r, "OFF1", 1, now + 20, 100), CW_REJ_OK);
    if (s <= 23 || s >= 60) CHECK_EQ(charge(r, "OFF1", 2, now + 40, 100), CW_REJ_OK);
    cw_engine_sweep(r->e, now + 500);
  }
  /* socket 1 last at 3.02 s, threshold 10 s: overdue at the 13.5 s sweep,
   * socket 2 spoke at 13.04 s, after 13.02 s; socket 2 last at 23.04 s:
   * overdue (and the station silent) at the 33.5 s sweep; last silent sweep
   * 59.5 s, resumed at 60 s: station cleared at 119.5 s; socket 1's warning,
   * last confirmed at the 32.5 s sweep, clears at the 92.5 s sweep. */
  det_exp_t exp[] = {{OFF, WARN, CW_EV_RAISED, 13.5, 0, 1},
                     {OFF, CRIT, CW_EV_RAISED, 33.5, 0, 0},
                     {OFF, WARN, CW_EV_CLEARED, 92.5, 0, 1},
                     {OFF, CRIT, CW_EV_CLEARED, 119.5, 0, 0}};
  int ok = det_match(r, T0, exp, 4);
  size_t open = cw_engine_open_alerts(r->e);
  det_free(r);
  CHECK(ok);
  CHECK_EQ(open, 0);
}

/* A station with one socket: when it goes silent the whole station is
 * silent, so it is the station alert (socket 0, critical), never a
 * per-socket warning. Cleared hold_s after its readings resume. */
CW_TEST(detect_offline_single_socket_station) {
  det_rec_t *r = off_engine(10);
  for (int s = 0; s <= 200; s++) {
    int64_t now = T0 + (int64_t)s * 1000;
    if (s <= 9 || s >= 80) CHECK_EQ(charge(r, "SGL1", 1, now, 100), CW_REJ_OK);
    cw_engine_sweep(r->e, now + 500);
  }
  det_exp_t exp[] = {{OFF, CRIT, CW_EV_RAISED, 19.5, 0, 0},
                     {OFF, CRIT, CW_EV_CLEARED, 139.5, 0, 0}};
  int ok = det_match(r, T0, exp, 2);
  det_free(r);
  CHECK(ok);
}

/* First contact is a burst (three buffered readings received together, as
 * tests/it/test_alerts.sh THR1 sends them): no receive-time gap is known, so
 * the interval is the documented default 60 s -> silent after 180 s, however
 * short offline_min_s is. A stream of such stations must not all alert
 * after offline_min_s of ordinary 60 s silence. */
CW_TEST(detect_offline_burst_first_contact) {
  det_rec_t *r = off_engine(10);
  for (int k = 0; k < 3; k++) {
    cw_reading_t a = det_reading("THR1", 1, T0 - 3000 + k * 1000);
    a.have = CW_HAVE_T;
    a.t = 30;
    CHECK_EQ(cw_engine_process(r->e, &a, T0 + k * 20), CW_REJ_OK);
  }
  for (int s = 0; s <= 300; s++) cw_engine_sweep(r->e, T0 + (int64_t)s * 1000 + 500);
  det_exp_t exp[] = {{OFF, CRIT, CW_EV_RAISED, 180.5, 0, 0}};
  int ok = det_match(r, T0, exp, 1);
  det_free(r);
  CHECK(ok);
}

/* A device reconfigured from 10 s to 300 s reporting (or one that uploads in
 * batches every 5 min): gaps above the threshold are outages and are not fed
 * to the interval, so without adapting it would raise and clear the station
 * alert every 5 minutes forever. After three long gaps in a row the
 * interval is re-learned: the alerts stop. */
CW_TEST(detect_offline_interval_grows) {
  det_rec_t *r = off_engine(90);
  int raised = 0, last_raise = -1;
  for (int s = 0; s <= 7200; s++) {
    int64_t now = T0 + (int64_t)s * 1000;
    int every = s < 600 ? 10 : 300;
    if (s % every == 0) CHECK_EQ(charge(r, "GRW1", 1, now, 100), CW_REJ_OK);
    cw_engine_sweep(r->e, now + 500);
  }
  for (int i = 0; i < r->n; i++)
    if (r->ev[i].event == CW_EV_RAISED) {
      raised++;
      last_raise = (int)((r->ev[i].ts_ms - T0) / 1000);
    }
  size_t open = cw_engine_open_alerts(r->e);
  if (raised > 3) det_dump(r, T0);
  det_free(r);
  CHECK(raised >= 1);       /* the first long gap is an outage until proven otherwise */
  CHECK(raised <= 3);       /* ... but not forever */
  CHECK(last_raise < 2000); /* settled within a few intervals */
  CHECK_EQ(open, 0);
}

/* After a restart detector timers start empty (the 10 s above rated_w, the
 * two readings that confirm a forbidden session), while a restored open
 * alert's "last seen" is its last event, usually long ago. The hold of a
 * restored alert therefore starts at the first verdict after the restart:
 * a condition that is re-established within hold_s keeps the alert open
 * without a cleared/raised pair; one that is really gone clears hold_s later. */
CW_TEST(detect_restore_hold_from_first_reading) {
  det_rec_t *r = det_new(NULL);
  cw_alert_event_t ev;
  memset(&ev, 0, sizeof(ev));
  snprintf(ev.station, sizeof(ev.station), "RST1");
  snprintf(ev.unit, sizeof(ev.unit), "W");
  ev.ts_ms = T0 - DET_HOUR_MS; /* raised an hour before the restart */
  ev.kind = OV;
  ev.severity = CRIT;
  ev.state = CW_ALERT_OPEN;
  ev.value = ev.threshold = 1000;
  ev.id = 501;
  ev.socket = 1; /* still overloaded after the restart */
  CHECK_EQ(cw_engine_restore_alert(r->e, &ev), 0);
  ev.id = 502;
  ev.socket = 2; /* fine after the restart */
  CHECK_EQ(cw_engine_restore_alert(r->e, &ev), 0);
  cw_socket_policy_t forbid = {.rated_w = 0, .forbidden = true};
  CHECK_EQ(cw_engine_set_socket(r->e, "RST1", 3, &forbid), 0);
  ev.id = 503;
  ev.socket = 3; /* still charging at a forbidden socket */
  ev.kind = ON;
  ev.severity = WARN;
  CHECK_EQ(cw_engine_restore_alert(r->e, &ev), 0);
  for (int s = 0; s <= 200; s += 5) {
    int64_t ts = T0 + (int64_t)s * 1000;
    CHECK_EQ(charge(r, "RST1", 1, ts, s <= 100 ? 1200 : 80), CW_REJ_OK);
    CHECK_EQ(charge(r, "RST1", 2, ts, 80), CW_REJ_OK);
    CHECK_EQ(charge(r, "RST1", 3, ts, 200), CW_REJ_OK);
  }
  det_exp_t exp[] = {{OV, CRIT, CW_EV_CLEARED, 60, 0, 2}, {OV, CRIT, CW_EV_CLEARED, 160, 0, 1}};
  int ok = det_match(r, T0, exp, 2);
  int ids_ok = ok && r->ev[0].id == 502 && r->ev[1].id == 501;
  size_t open = cw_engine_open_alerts(r->e);
  det_free(r);
  CHECK(ok);
  CHECK(ids_ok);
  CHECK_EQ(open, 1); /* the forbidden-socket alert, never cleared and re-raised */
}

/* A station-silent alert open before a restart, station still dead after
 * it: its sockets' silence clocks restart at the first sweep, and until they
 * run out the engine does not know whether the station is silent, so the
 * alert neither clears nor is raised again. A socket that reports clears it
 * hold_s later. */
CW_TEST(detect_restore_station_silent_kept) {
  det_rec_t *r = det_new(NULL);
  for (uint8_t k = 1; k <= 2; k++)
    CHECK_EQ(cw_engine_restore_last_ts(r->e, "RST2", k, T0 - 600000), 0);
  cw_alert_event_t ev;
  memset(&ev, 0, sizeof(ev));
  snprintf(ev.station, sizeof(ev.station), "RST2");
  snprintf(ev.unit, sizeof(ev.unit), "s");
  ev.ts_ms = T0 - 400000;
  ev.kind = OFF;
  ev.severity = CRIT;
  ev.state = CW_ALERT_OPEN;
  ev.id = 601;
  ev.socket = 0;
  CHECK_EQ(cw_engine_restore_alert(r->e, &ev), 0);
  for (int s = 0; s <= 600; s++) {
    int64_t now = T0 + (int64_t)s * 1000;
    if (s >= 400 && s % 10 == 0) CHECK_EQ(charge(r, "RST2", 1, now, 80), CW_REJ_OK);
    cw_engine_sweep(r->e, now);
  }
  /* socket 1 back at 400 s: the station, last silent at the 399 s sweep, is
   * cleared at 459 s; socket 2 still silent,
   * overdue since 181 s, gets its warning once socket 1 has spoken */
  det_exp_t exp[] = {{OFF, WARN, CW_EV_RAISED, 400, 0, 2}, {OFF, CRIT, CW_EV_CLEARED, 459, 0, 0}};
  int ok = det_match(r, T0, exp, 2);
  int id_ok = ok && r->ev[1].id == 601;
  det_free(r);
  CHECK(ok);
  CHECK(id_ok);
}
