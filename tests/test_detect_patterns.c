/* test_detect_patterns.c - the six field patterns of docs/DETECTORS.md
 * ("Field patterns"), each replayed with the default thresholds: a healthy
 * slow overnight charge, a report-on-change plug, a probe step at zero
 * current, a legitimate 470 W charger and a thermostat-cycling appliance
 * raise no false alarm (or one incident, not three), and sensors on the
 * neighbour cells of the real UL FSRI test get critical before their own
 * runaway. Scenarios are shared with bench/detect.c (test_detect_util.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_detect_util.h"

static const int steps[] = {1, 5, 15, 30};

static det_rec_t *scen(const char *name, int step, det_scen_out_t *out) {
  const det_scen_t *s = det_scen_find(name);
  det_rec_t *r = det_new(NULL);
  memset(out, 0, sizeof(*out));
  if (!s || s->run(r, step, out) < 0) {
    det_free(r);
    return NULL;
  }
  return r;
}

static int count_ev(const det_rec_t *r, cw_event_t ev, int kind) {
  int n = 0;
  for (int i = 0; i < r->n; i++)
    if (r->ev[i].event == ev && (kind < 0 || (int)r->ev[i].kind == kind)) n++;
  return n;
}

/* 1. A lead-acid e-bike charger drawing 66-84 W for 7.4 h from 22:00 is
 * slow, not stuck: no "still drawing" critical at 6 h (0.5 kWh delivered),
 * no alert at all, at every sampling interval. */
CW_TEST(detect_pattern_slow_overnight_silent) {
  for (int i = 0; i < 4; i++) {
    det_scen_out_t o;
    det_rec_t *r = scen("slow_overnight", steps[i], &o);
    CHECK(r != NULL);
    int n = r->n;
    if (n) det_dump(r, o.start_ms);
    det_free(r);
    if (n) fprintf(stderr, "    at %d s sampling\n", steps[i]);
    CHECK_EQ(n, 0);
  }
}

/* 2. A report-on-change plug speaking every 3-13 min during a steady
 * charge: no offline alert in 4 h. Then it really goes silent: one station
 * alert, within the offline ceiling (offline_max_s, 30 min). */
CW_TEST(detect_pattern_report_on_change_silent) {
  det_scen_out_t o;
  det_rec_t *r = scen("report_on_change", 1, &o);
  CHECK(r != NULL);
  int during = r->n;
  if (during) det_dump(r, o.start_ms);
  int64_t last = o.start_ms + 4 * DET_HOUR_MS;
  for (int64_t now = last; now <= last + DET_HOUR_MS; now += 1000) cw_engine_sweep(r->e, now);
  int raised = count_ev(r, CW_EV_RAISED, CW_KIND_OFFLINE);
  int64_t at = raised ? r->ev[during].ts_ms : 0;
  uint8_t sock = raised ? r->ev[during].socket : 255;
  det_free(r);
  CHECK_EQ(during, 0);
  CHECK_EQ(raised, 1);
  CHECK_EQ(sock, 0); /* the station (its only socket) */
  CHECK(at - last <= 1800 * 1000 + 13 * 60 * 1000); /* ceiling after its last reading */
}

/* 3. A probe step 25.5 -> 33.4 C in 50 s with zero current and no further
 * rise: no thermal warning, one sensor event, the socket flagged. A real
 * rise at zero current (3 C/min for 10 min) still warns. */
CW_TEST(detect_pattern_probe_step_no_alert) {
  for (int i = 0; i < 4; i++) {
    det_scen_out_t o;
    det_rec_t *r = scen("probe_step", steps[i], &o);
    CHECK(r != NULL);
    int n = r->n;
    if (n) det_dump(r, o.start_ms);
    uint64_t sev = cw_engine_sensor_events(r->e);
    int flag = cw_engine_socket_sensor_flag(r->e, "PRB-001", 1);
    det_free(r);
    if (n || sev != 1) fprintf(stderr, "    at %d s sampling\n", steps[i]);
    CHECK_EQ(n, 0);
    CHECK_EQ(sev, 1);
    CHECK_EQ(flag, 1);
  }
  for (int i = 0; i < 4; i++) {
    det_seg_t seg[] = {{600, steps[i], 0, 0, 25, 25, 0.15, CW_HAVE_W | CW_HAVE_T, 0},
                       {600, steps[i], 0, 0, 25, 55, 0.15, CW_HAVE_W | CW_HAVE_T, 0}};
    det_rec_t *r = det_new(NULL);
    int64_t start = DET_MIDNIGHT_MS + 3 * DET_HOUR_MS;
    det_run(r, "PRB-002", 1, start, seg, 2, 5);
    /* rise rule ~30 s into the ramp, then thermal_confirm_s (120 s) */
    det_exp_t exp[] = {
        {CW_KIND_THERMAL_RUNAWAY, CW_SEV_WARNING, CW_EV_RAISED, 700, 60 + 2 * steps[i], 1}};
    int ok = det_match(r, start, exp, 1);
    det_free(r);
    if (!ok) fprintf(stderr, "    rise at zero current, %d s sampling\n", steps[i]);
    CHECK(ok);
  }
}

/* 4. A legitimate 470 W charger raises nothing with the defaults; the limit
 * is the socket's (charge_max_w): a socket limited to 300 W warns. */
CW_TEST(detect_pattern_fast_charger_per_socket_limit) {
  for (int i = 0; i < 4; i++) {
    det_scen_out_t o;
    det_rec_t *r = scen("fast_charger", steps[i], &o);
    CHECK(r != NULL);
    int n = r->n;
    if (n) det_dump(r, o.start_ms);
    det_free(r);
    CHECK_EQ(n, 0);
  }
  det_rec_t *r = det_new(NULL);
  cw_socket_policy_t sp = {.rated_w = 1000, .charge_max_w = 300};
  CHECK_EQ(cw_engine_set_socket(r->e, "FC-0002", 1, &sp), 0);
  det_seg_t seg[] = {{900, 10, 470, 470, 30, 30, 0, CW_HAVE_W, 0}};
  int64_t start = DET_MIDNIGHT_MS + 13 * DET_HOUR_MS;
  det_run(r, "FC-0002", 1, start, seg, 1, 1);
  det_exp_t exp[] = {{CW_KIND_OVERLOAD, CW_SEV_WARNING, CW_EV_RAISED, 300, 0, 1}};
  int ok = det_match(r, start, exp, 1);
  double thr = r->n ? r->ev[0].threshold : 0;
  det_free(r);
  CHECK(ok);
  CHECK_NEAR(thr, 300, 1e-9);
  /* the station's limit applies to its sockets without their own */
  r = det_new(NULL);
  cw_station_policy_t stp;
  cw_station_policy_defaults(&stp);
  stp.charge_max_w = 300;
  CHECK_EQ(cw_engine_set_station(r->e, "FC-0003", &stp), 0);
  det_run(r, "FC-0003", 1, start, seg, 1, 1);
  ok = det_match(r, start, exp, 1);
  det_free(r);
  CHECK(ok);
}

/* 5. An iron cycling 1.5 kW on a 1000 W socket (40 s on, 80 s off, three
 * times): one incident, one "raised"; the two repeats are "repeated"
 * events on the same id, counted on the alert. */
CW_TEST(detect_pattern_cycling_appliance_one_raised) {
  for (int i = 0; i < 2; i++) { /* 1 and 5 s: the 10 s rule needs samples inside 40 s */
    det_scen_out_t o;
    det_rec_t *r = scen("cycling_iron", steps[i], &o);
    CHECK(r != NULL);
    int raised = count_ev(r, CW_EV_RAISED, -1), rep = count_ev(r, CW_EV_REPEATED, -1);
    bool same_id = true;
    uint32_t last_count = 0;
    for (int k = 0; k < r->n; k++) {
      same_id = same_id && r->ev[k].id == r->ev[0].id;
      last_count = r->ev[k].count;
    }
    if (raised != 1) det_dump(r, o.start_ms);
    det_free(r);
    CHECK_EQ(raised, 1);
    CHECK_EQ(rep, 2);
    CHECK(same_id);
    CHECK_EQ(last_count, 3);
  }
}

/* 6. Real UL FSRI data, cells 1-9 on sockets 1-9 of one station: the cells
 * that warm before their own runaway (3, 6, 8, 9: neighbours of the heated
 * cell 5) reach critical before their onset at every sampling interval,
 * because cell 5's socket is already critical. Cells 1, 2 and 4 stay at
 * ambient until they ignite: nothing can precede them (reported only). */
CW_TEST(detect_pattern_fsri_neighbour_cells_critical_early) {
  det_fsri_row_t *rows = NULL;
  int n = det_fsri_load(&rows);
  CHECK(n > 5900);
  static const int warm[] = {3, 6, 8, 9};
  for (int i = 0; i < 4; i++) {
    det_scen_out_t o;
    det_rec_t *r = scen("fsri_station", steps[i], &o);
    CHECK(r != NULL);
    int bad = 0;
    printf("    fsri station %2d s:", steps[i]);
    for (int c = 1; c <= 9; c++) {
      int onset = det_fsri_onset(rows, n, c);
      int64_t crit = -1;
      for (int k = 0; k < r->n && crit < 0; k++)
        if (r->ev[k].socket == c && r->ev[k].kind == CW_KIND_THERMAL_RUNAWAY &&
            r->ev[k].severity == CW_SEV_CRITICAL)
          crit = (r->ev[k].ts_ms - o.start_ms) / 1000;
      if (crit < 0)
        printf(" c%d none", c);
      else
        printf(" c%d %+llds", c, (long long)(onset - crit));
      for (int w = 0; w < 4; w++)
        if (warm[w] == c && (crit < 0 || crit >= onset)) bad++;
    }
    printf(" (critical lead before onset)\n");
    det_free(r);
    if (bad) fprintf(stderr, "    %d warm neighbours late at %d s sampling\n", bad, steps[i]);
    if (bad) free(rows);
    CHECK_EQ(bad, 0);
  }
  free(rows);
}

/* found -> registered -> rectified -> closed: rectify needs acknowledged
 * first, carries who and the note, and close still works after it. */
CW_TEST(alert_rectified_lifecycle) {
  det_rec_t *r = det_new(NULL);
  int64_t t0 = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS;
  for (int s = 0; s <= 12; s++) {
    cw_reading_t a = det_reading("ST-RCT", 2, t0 + s * 1000LL);
    a.have = CW_HAVE_W;
    a.w = 1300;
    det_feed(r, &a);
  }
  CHECK_EQ(r->n, 1);
  int64_t id = r->ev[0].id;
  CHECK_EQ(cw_engine_rectify(r->e, id, "li.wei", "replaced socket", t0 + 20000), -EINVAL);
  CHECK_EQ(cw_engine_operator(r->e, id, CW_EV_ACKNOWLEDGED, "li.wei", t0 + 21000), 0);
  CHECK_EQ(cw_engine_rectify(r->e, id, "li.wei", "replaced socket\n", t0 + 22000), 0);
  CHECK_EQ(cw_engine_rectify(r->e, id, "li.wei", "again", t0 + 22500), -EINVAL);
  CHECK_EQ(cw_engine_operator(r->e, id, CW_EV_ACKNOWLEDGED, "x", t0 + 22600), -EINVAL);
  CHECK_EQ(r->n, 3);
  CHECK_EQ(r->ev[2].event, CW_EV_RECTIFIED);
  CHECK_EQ(r->ev[2].state, CW_ALERT_RECTIFIED);
  CHECK_STR(r->ev[2].by, "li.wei");
  CHECK_STR(r->ev[2].message, "rectified by li.wei: replaced socket?");
  CHECK_STR(cw_event_name(CW_EV_RECTIFIED), "rectified");
  CHECK_STR(cw_alert_state_name(CW_ALERT_RECTIFIED), "rectified");
  CHECK_STR(cw_event_name(CW_EV_REPEATED), "repeated");
  CHECK_EQ(cw_engine_operator(r->e, id, CW_EV_CLOSED, "li.wei", t0 + 23000), 0);
  CHECK_EQ(r->ev[3].event, CW_EV_CLOSED);
  det_free(r);
}

/* Corroboration: a 3 C/min rise while charging is a warning on its own;
 * with hot ambient (>= 54 C) or the charging power cut to nothing with no
 * full/stop report (BMS cut-off) it is critical. At 5 s sampling. */
CW_TEST(detect_fusion_ambient_and_power_cut) {
  for (int variant = 0; variant < 3; variant++) {
    det_rec_t *r = det_new(NULL);
    int64_t start = DET_MIDNIGHT_MS + 15 * DET_HOUR_MS;
    for (int x = 0; x <= 900; x += 5) {
      cw_reading_t rd = det_reading("FUS-001", 1, start + x * 1000LL);
      rd.have = CW_HAVE_W | CW_HAVE_T | CW_HAVE_T_AMB;
      rd.t = (float)(x < 300 ? 30.0 : 30.0 + (x - 300) * 3.0 / 60.0); /* 45 C at 600 s */
      rd.t_amb = variant == 1 && x >= 400 ? 60.0f : 28.0f;
      rd.w = variant == 2 && x >= 400 ? 0.0f : 80.0f;
      det_feed(r, &rd);
      if (x >= 560) break; /* stay under 60 C */
    }
    cw_severity_t worst = CW_SEV_NONE;
    for (int i = 0; i < r->n; i++)
      if (r->ev[i].kind == CW_KIND_THERMAL_RUNAWAY && r->ev[i].severity > worst)
        worst = r->ev[i].severity;
    if (worst != (variant ? CW_SEV_CRITICAL : CW_SEV_WARNING)) det_dump(r, start);
    det_free(r);
    CHECK_EQ(worst, variant ? CW_SEV_CRITICAL : CW_SEV_WARNING);
  }
}

/* The real metering-plug logs of healthy chargers (an e-scooter, a power
 * bank and a watch charger; the last two cross the night window) raise
 * nothing at any sampling interval. */
CW_TEST(detect_real_plug_logs_silent) {
  static const char *const names[] = {"ninebot_charge", "powerbank_charge", "watch_charge"};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
    for (int i = 0; i < 4; i++) {
      det_scen_out_t o;
      det_rec_t *r = scen(names[k], steps[i], &o);
      CHECK(r != NULL);
      int n = r->n;
      if (n) {
        det_dump(r, o.start_ms);
        fprintf(stderr, "    %s at %d s sampling\n", names[k], steps[i]);
      }
      det_free(r);
      CHECK_EQ(n, 0);
    }
}
