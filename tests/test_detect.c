/* test_detect.c - detection engine on synthetic traces: each case is a
 * piecewise-linear trace and the exact list of alert events (kind, severity,
 * event, when) it must produce. Real-data replays are in test_detect_trace.c,
 * lifecycle/API cases in test_detect_api.c. */
#include <string.h>

#include "test.h"
#include "test_detect_util.h"

#define W CW_HAVE_W
#define T CW_HAVE_T
#define TH CW_KIND_THERMAL_RUNAWAY
#define OV CW_KIND_OVERLOAD
#define ON CW_KIND_OVERNIGHT_CHARGING
#define WARN CW_SEV_WARNING
#define CRIT CW_SEV_CRITICAL
#define RAISED CW_EV_RAISED
#define ESC CW_EV_ESCALATED
#define CLEARED CW_EV_CLEARED

typedef struct det_case {
  const char *name;
  double start_local_h; /* local time of day the trace starts (UTC+8) */
  bool night_forbidden; /* station overnight_allowed = false */
  bool socket_forbidden;
  int nseg;
  det_seg_t seg[6];
  int nexp;
  det_exp_t exp[6];
} det_case_t;

static const det_case_t cases[] = {
    /* 25 -> 50 C over 3 h (0.14 C/min) at 30 s: sun on a metal cabinet. */
    {"sun_warming", 8, false, false, 1, {{3 * 3600, 30, 80, 80, 25, 50, 0.15, W | T, 0}}, 0, {{0}}},
    /* flat 35 C with sensor noise sigma 0.3 C, 2 h, at 1 s and 30 s. */
    {"noise_1s", 10, false, false, 1, {{7200, 1, 80, 80, 35, 35, 0.3, W | T, 0}}, 0, {{0}}},
    {"noise_5s", 10, false, false, 1, {{7200, 5, 80, 80, 35, 35, 0.3, W | T, 0}}, 0, {{0}}},
    {"noise_15s", 10, false, false, 1, {{7200, 15, 80, 80, 35, 35, 0.3, W | T, 0}}, 0, {{0}}},
    {"noise_30s", 10, false, false, 1, {{7200, 30, 80, 80, 35, 35, 0.3, W | T, 0}}, 0, {{0}}},
    /* plug-in inrush 1500 W for 5 s, then a normal charger. */
    {"inrush",
     10,
     false,
     false,
     2,
     {{5, 1, 1500, 1500, 30, 30, 0, W | T, 0}, {600, 1, 80, 80, 30, 30, 0, W | T, 0}},
     0,
     {{0}}},
    /* 1200 W (> rated 1000) for 60 s: critical after 10 s; clears 60 s after the last. */
    {"overload_sustained",
     10,
     false,
     false,
     2,
     {{60, 1, 1200, 1200, 30, 30, 0, W, 0}, {120, 1, 80, 80, 30, 30, 0, W, 0}},
     2,
     {{OV, CRIT, RAISED, 10, 0, 1}, {OV, CRIT, CLEARED, 119, 0, 1}}},
    /* a tampered 800 W charger (above the 700 W default charger limit):
     * warning after 5 min. */
    {"overload_tamper", 10, false, false, 1, {{600, 10, 800, 800, 30, 30, 0, W, 0}}, 1,
     {{OV, WARN, RAISED, 300, 0, 1}}},
    /* charging from 23:00 at a site that forbids it: warning after 5 min. */
    {"night_forbidden", 23, true, false, 1, {{1800, 30, 80, 80, 30, 30, 0, W, 0}}, 1,
     {{ON, WARN, RAISED, 300, 0, 1}}},
    {"night_allowed", 23, false, false, 1, {{1800, 30, 80, 80, 30, 30, 0, W, 0}}, 0, {{0}}},
    /* the session ends 2 min below 15 W; the alert clears hold_s after that. */
    {"night_session_end",
     23,
     true,
     false,
     2,
     {{600, 30, 80, 80, 30, 30, 0, W, 0}, {300, 30, 0, 0, 30, 30, 0, W, 0}},
     2,
     {{ON, WARN, RAISED, 300, 0, 1}, {ON, WARN, CLEARED, 750, 0, 1}}},
    /* forbidden socket: confirmed by the second charging reading. */
    {"forbidden_socket", 10, false, true, 1, {{600, 30, 80, 80, 30, 30, 0, W, 0}}, 1,
     {{ON, WARN, RAISED, 30, 0, 1}}},
    /* 13 h session from 07:00 (never in the night window): > 8 h, > 12 h. */
    {"session_long", 7, false, false, 1, {{13 * 3600, 60, 80, 80, 30, 30, 0, W, 0}}, 2,
     {{ON, WARN, RAISED, 8 * 3600 + 60, 0, 1}, {ON, CRIT, ESC, 12 * 3600 + 60, 0, 1}}},
    /* still drawing 350 W 6 h into the night window (overnight allowed):
     * 2.1 kWh by then, more than any e-bike pack takes. */
    {"night_stuck", 22, false, false, 1, {{7 * 3600, 60, 350, 350, 30, 30, 0, W, 0}}, 1,
     {{ON, CRIT, RAISED, 6 * 3600, 0, 1}}},
    /* 1200 W 20 s on, 100 s off, twice (merged: same id, the second time a
     * "repeated" event), then after the cool-down a third time (new id; ids
     * checked in the test body). */
    {"hold_cooldown",
     10,
     false,
     false,
     6,
     {{20, 1, 1200, 1200, 30, 30, 0, W, 0},
      {100, 1, 80, 80, 30, 30, 0, W, 0},
      {20, 1, 1200, 1200, 30, 30, 0, W, 0},
      {460, 1, 80, 80, 30, 30, 0, W, 0},
      {20, 1, 1200, 1200, 30, 30, 0, W, 0},
      {100, 1, 80, 80, 30, 30, 0, W, 0}},
     6,
     {{OV, CRIT, RAISED, 10, 0, 1},
      {OV, CRIT, CLEARED, 79, 0, 1},
      {OV, CRIT, CW_EV_REPEATED, 130, 0, 1},
      {OV, CRIT, CLEARED, 199, 0, 1},
      {OV, CRIT, RAISED, 610, 0, 1},
      {OV, CRIT, CLEARED, 679, 0, 1}}},
    /* a single-sample +3 C glitch at 1 Hz is not a 1 C/s-for-3-s rise. */
    {"thermal_glitch",
     10,
     false,
     false,
     3,
     {{300, 1, 80, 80, 30, 30, 0, W | T, 0},
      {1, 1, 80, 80, 33, 33, 0, W | T, 0},
      {300, 1, 80, 80, 30, 30, 0, W | T, 0}},
     0,
     {{0}}},
};

static const det_case_t *find_case(const char *name) {
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    if (strcmp(cases[i].name, name) == 0) return &cases[i];
  return NULL;
}

/* Runs a case; returns the recorder (caller frees) or NULL on mismatch. */
static det_rec_t *run_case_seed(const char *name, int *ok, uint32_t seed) {
  const det_case_t *c = find_case(name);
  *ok = 0;
  if (!c) return NULL;
  det_rec_t *r = det_new(NULL);
  cw_station_policy_t sp;
  cw_station_policy_defaults(&sp);
  sp.overnight_allowed = !c->night_forbidden;
  cw_engine_set_station(r->e, "CX-0001", &sp);
  if (c->socket_forbidden) {
    cw_socket_policy_t pp = {.rated_w = 0, .forbidden = true};
    cw_engine_set_socket(r->e, "CX-0001", 1, &pp);
  }
  int64_t start = DET_MIDNIGHT_MS + llround(c->start_local_h * DET_HOUR_MS);
  det_run(r, "CX-0001", 1, start, c->seg, c->nseg, seed);
  *ok = det_match(r, start, c->exp, c->nexp);
  for (int i = 0; i < r->n; i++) /* every message is printable text */
    for (const char *p = r->ev[i].message; *p; p++)
      if ((unsigned char)*p < 0x20) *ok = 0;
  return r;
}

static det_rec_t *run_case(const char *name, int *ok) { return run_case_seed(name, ok, 42); }

/* Noise cases: several independent noise draws must all stay silent. */
#define NOISE_TEST(tname, cname)                      \
  CW_TEST(tname) {                                    \
    for (uint32_t seed = 1; seed <= 8; seed++) {      \
      int ok;                                         \
      det_free(run_case_seed(cname, &ok, seed));      \
      if (!ok) fprintf(stderr, "    seed %u\n", seed); \
      CHECK(ok);                                      \
    }                                                 \
  }

#define CASE_TEST(tname, cname)      \
  CW_TEST(tname) {                   \
    int ok;                          \
    det_rec_t *r = run_case(cname, &ok); \
    det_free(r);                     \
    CHECK(ok);                       \
  }

NOISE_TEST(detect_sun_warming_silent, "sun_warming")
NOISE_TEST(detect_noise_1s_silent, "noise_1s")
NOISE_TEST(detect_noise_5s_silent, "noise_5s")
NOISE_TEST(detect_noise_15s_silent, "noise_15s")
NOISE_TEST(detect_noise_30s_silent, "noise_30s")
CASE_TEST(detect_inrush_spike_silent, "inrush")
CASE_TEST(detect_overload_sustained_critical, "overload_sustained")
CASE_TEST(detect_overload_tamper_warning, "overload_tamper")
CASE_TEST(detect_night_forbidden_warning, "night_forbidden")
CASE_TEST(detect_night_allowed_silent, "night_allowed")
CASE_TEST(detect_night_session_end_clears, "night_session_end")
CASE_TEST(detect_forbidden_socket_warning, "forbidden_socket")
CASE_TEST(detect_session_8h_12h, "session_long")
CASE_TEST(detect_night_stuck_critical, "night_stuck")
CASE_TEST(detect_thermal_glitch_silent, "thermal_glitch")

CW_TEST(alert_hold_and_cooldown_merge) {
  int ok;
  det_rec_t *r = run_case("hold_cooldown", &ok);
  if (!ok) {
    det_free(r);
    CHECK(ok);
  }
  int64_t id0 = r->ev[0].id, id2 = r->ev[2].id, id4 = r->ev[4].id;
  cw_alert_state_t st1 = r->ev[1].state, st2 = r->ev[2].state;
  uint32_t cnt2 = r->ev[2].count;
  det_free(r);
  CHECK_EQ(id0, id2); /* re-raise within cooldown_s merges into the same alert */
  CHECK(id4 != id0);  /* after the cool-down it is a new alert */
  CHECK_EQ(st1, CW_ALERT_CLEARED);
  CHECK_EQ(st2, CW_ALERT_OPEN);
  CHECK_EQ(cnt2, 2); /* the repeat is counted on the alert */
}

/* Alternating 1001/999 W: around rated_w (1000) at 1 Hz for 30 min, and in
 * 20 s halves at 5 s sampling. Each makes exactly one alert event. */
CW_TEST(alert_flapping_overload_one_alert) {
  for (int variant = 0; variant < 2; variant++) {
    det_rec_t *r = det_new(NULL);
    int64_t start = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS;
    int step = variant == 0 ? 1 : 5;
    for (int s = 0; s < 1800; s += step) {
      cw_reading_t rd = det_reading("CX-0002", 3, start + (int64_t)s * 1000);
      rd.have = W;
      bool high = variant == 0 ? (s % 2 == 0) : ((s / 20) % 2 == 0);
      rd.w = high ? 1001 : 999;
      CHECK_EQ(det_feed(r, &rd), CW_REJ_OK);
    }
    /* fast flapping never holds > rated_w for 10 s: only the 400 W/5 min
     * warning; slow flapping holds it, and the gaps are shorter than hold_s. */
    det_exp_t fast[] = {{OV, WARN, RAISED, 300, 0, 3}};
    det_exp_t slow[] = {{OV, CRIT, RAISED, 10, 0, 3}};
    int ok = det_match(r, start, variant == 0 ? fast : slow, 1);
    size_t open = cw_engine_open_alerts(r->e);
    det_free(r);
    CHECK(ok);
    CHECK_EQ(open, 1);
  }
}

/* The 1 C/s-for-3-s rule at every sampling interval: 30 C flat for 600 s,
 * then 1.5 C/s for 30 s (to 75 C), then flat. Critical at the first sample
 * that spans >= 3 s of the rise (two samples >= 3 s apart at 5-30 s). */
CW_TEST(detect_thermal_rate_sampling) {
  static const int steps[] = {1, 5, 15, 30};
  for (size_t i = 0; i < 4; i++) {
    int st = steps[i];
    det_seg_t seg[] = {{600, st, 80, 80, 30, 30, 0, W | T, 0},
                       {30, st, 80, 80, 30, 75, 0, W | T, 0},
                       {120, st, 80, 80, 75, 75, 0, W | T, 0}};
    det_rec_t *r = det_new(NULL);
    int64_t start = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS;
    det_run(r, "CX-0003", 1, start, seg, 3, 7);
    /* 1 s: 602 s spans 599..602 (3 C in 3 s) but its middle sample may fall
     * on the flat part (600 s); 603 s spans 600..603 on the ramp */
    det_exp_t exp[] = {{TH, CRIT, RAISED, st == 1 ? 602 : 600 + st, st == 1 ? 1 : 0, 1}};
    int ok = det_match(r, start, exp, 1);
    const char *unit = r->n ? r->ev[0].unit : "";
    int unit_ok = strcmp(unit, "C/s") == 0;
    det_free(r);
    if (!ok) fprintf(stderr, "    at %d s sampling\n", st);
    CHECK(ok);
    CHECK(unit_ok);
  }
}

/* The 2 C/min rule at every sampling interval, with noise sigma 0.3 C:
 * 30 C for 600 s, then 3 C/min for 540 s (to 57 C, under 60 C), then flat
 * 57 C. Warning once the 60 s least-squares slope has been >= 2 C/min on two
 * consecutive evaluations; cleared hold_s after the slope falls back. */
CW_TEST(detect_thermal_rise_sampling) {
  static const int steps[] = {1, 5, 15, 30};
  for (size_t i = 0; i < 4; i++) {
    int st = steps[i];
    det_seg_t seg[] = {{600, st, 80, 80, 30, 30, 0.3, W | T, 0},
                       {540, st, 80, 80, 30, 57, 0.3, W | T, 0},
                       {600, st, 80, 80, 57, 57, 0.3, W | T, 0}};
    det_rec_t *r = det_new(NULL);
    int64_t start = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS;
    det_run(r, "CX-0004", 1, start, seg, 3, 11);
    /* the slope needs ~2/3 of the window on the ramp (2 of 3 C/min) and two
     * evaluations; it falls back ~1/3 window after the ramp ends (1140 s). */
    det_exp_t exp[] = {{TH, WARN, RAISED, 630, 2 * st + 30, 1},
                       {TH, WARN, CLEARED, 1140 + 60, 2 * st + 40, 1}};
    int ok = det_match(r, start, exp, 2);
    det_free(r);
    if (!ok) fprintf(stderr, "    at %d s sampling\n", st);
    CHECK(ok);
  }
}
