/* test_detect_session.c - charging_sessions records from the detection
 * engine (lib/detect_session.c): each way a session ends, with exact start,
 * end, energy, peaks, readings and end_reason. */
#include <math.h>
#include <string.h>

#include "test.h"
#include "test_detect_util.h"

typedef struct {
  cw_session_t s[16];
  int n;
} sess_rec_t;

static void on_session(void *ctx, const cw_session_t *s) {
  sess_rec_t *r = ctx;
  if (r->n < 16) r->s[r->n++] = *s;
}

#define T (DET_MIDNIGHT_MS + 10 * DET_HOUR_MS) /* 10:00 local: outside the night window */

static void feed(det_rec_t *r, const char *st, uint8_t sock, int64_t ts, uint16_t have, float w,
                 double wh, float t, int8_t state, int8_t stop) {
  cw_reading_t a = det_reading(st, sock, ts);
  a.have = have;
  a.w = w;
  a.wh = wh;
  a.t = t;
  a.state = state;
  a.stop = stop;
  CHECK_EQ(det_feed(r, &a), CW_REJ_OK);
}

#define WWT (CW_HAVE_W | CW_HAVE_WH | CW_HAVE_T)

/* Every field of a record (NAN peak: none expected). */
static void expect(const cw_session_t *s, int64_t start, int64_t end, double wh, double pw,
                   double pt, uint32_t n, const char *why) {
  CHECK_EQ(s->start_ms, start);
  CHECK_EQ(s->end_ms, end);
  CHECK_NEAR(s->energy_wh, wh, 1e-4);
  CHECK(isnan(pw) ? isnan(s->peak_w) : s->peak_w == (float)pw);
  CHECK(isnan(pt) ? isnan(s->peak_t) : s->peak_t == (float)pt);
  CHECK_EQ(s->readings, n);
  CHECK_STR(cw_session_end_name(s->end), why);
}

/* Ended by the device: stop full on the last reading (state full, 0 W). */
CW_TEST(detect_session_device_stop) {
  det_rec_t *r = det_new(NULL);
  sess_rec_t got = {0};
  cw_engine_on_session(r->e, on_session, &got);
  for (int i = 0; i < 10; i++)
    feed(r, "SES1", 1, T + i * 30000LL, WWT | CW_HAVE_STATE, 300, 5.0 * i, 30 + i % 2,
         CW_STATE_CHARGING, 0);
  CHECK_EQ(got.n, 0);
  feed(r, "SES1", 1, T + 300000, WWT | CW_HAVE_STATE | CW_HAVE_STOP, 0, 46, 29, CW_STATE_FULL,
       CW_STOP_FULL);
  CHECK_EQ(got.n, 1);
  CHECK_STR(got.s[0].station, "SES1");
  CHECK_EQ(got.s[0].socket, 1);
  expect(&got.s[0], T, T + 300000, 46, 300, 31, 11, "full");
  /* idle readings afterwards open nothing */
  feed(r, "SES1", 1, T + 330000, WWT | CW_HAVE_STATE, 0, 0, 28, CW_STATE_IDLE, 0);
  cw_engine_sweep(r->e, T + 331000);
  CHECK_EQ(got.n, 1);
  det_free(r);
}

/* Ended by the socket: w under 15 W for 2 min (no state field); the end is
 * the first low reading; energy is the rise of the wh counter. */
CW_TEST(detect_session_idle_power) {
  det_rec_t *r = det_new(NULL);
  sess_rec_t got = {0};
  cw_engine_on_session(r->e, on_session, &got);
  for (int i = 0; i < 6; i++) feed(r, "SES2", 2, T + i * 30000LL, WWT, 200, 10 + 2.0 * i, 40, 0, 0);
  for (int i = 6; i < 10; i++) feed(r, "SES2", 2, T + i * 30000LL, WWT, 2, 20, 35, 0, 0);
  CHECK_EQ(got.n, 0); /* 90 s low: not yet */
  feed(r, "SES2", 2, T + 300000, WWT, 2, 20.5, 35, 0, 0);
  CHECK_EQ(got.n, 1);
  expect(&got.s[0], T, T + 180000, 10.5, 200, 40, 11, "idle");
  det_free(r);
}

/* Silent mid-session: timeout at the offline threshold, ended at the last
 * reading (no wh counter: the integral of w). Back and still charging: a
 * new record from that reading, here ended by unplugging. */
CW_TEST(detect_session_timeout_then_new) {
  det_rec_t *r = det_new(NULL);
  sess_rec_t got = {0};
  cw_engine_on_session(r->e, on_session, &got);
  for (int i = 0; i <= 6; i++) feed(r, "SES3", 3, T + i * 10000LL, CW_HAVE_W, 100, 0, 0, 0, 0);
  cw_engine_sweep(r->e, T + 60000 + 1000);
  CHECK_EQ(got.n, 0);
  cw_engine_sweep(r->e, T + 60000 + 2000000); /* beyond offline_max_s */
  CHECK_EQ(got.n, 1);
  expect(&got.s[0], T, T + 60000, 100.0 * 60 / 3600, 100, NAN, 7, "timeout");
  cw_engine_sweep(r->e, T + 60000 + 2001000);
  CHECK_EQ(got.n, 1); /* once */
  feed(r, "SES3", 3, T + 2160000, CW_HAVE_W, 100, 0, 0, 0, 0);
  feed(r, "SES3", 3, T + 2190000, CW_HAVE_W | CW_HAVE_STOP, 0, 0, 0, 0, CW_STOP_UNPLUGGED);
  CHECK_EQ(got.n, 2);
  expect(&got.s[1], T + 2160000, T + 2190000, 0, 100, NAN, 2, "unplugged");
  det_free(r);
}

/* Open sessions are written at each checkpoint as restart, ended at their
 * last reading; the final record has the same start (the database upserts). */
CW_TEST(detect_session_checkpoint_restart) {
  cw_detect_cfg_t cfg;
  cw_detect_cfg_defaults(&cfg);
  CHECK_EQ(cw_detect_cfg_set(&cfg, "session_checkpoint_s", "10"), 0);
  det_rec_t *r = det_new(&cfg);
  sess_rec_t got = {0};
  cw_engine_on_session(r->e, on_session, &got);
  for (int i = 0; i < 4; i++)
    feed(r, "SES4", 1, T + i * 1000LL, WWT, 150, 100 + i, 33.3f, 0, 0);
  feed(r, "SES4", 2, T, CW_HAVE_W, 3, 0, 0, 0, 0); /* not charging: no session */
  cw_engine_sweep(r->e, T + 4000);
  CHECK_EQ(got.n, 0);
  cw_engine_sweep(r->e, T + 14000);
  CHECK_EQ(got.n, 1);
  CHECK_EQ(got.s[0].socket, 1);
  expect(&got.s[0], T, T + 3000, 3, 150, 33.3, 4, "restart");
  cw_engine_sweep(r->e, T + 15000);
  CHECK_EQ(got.n, 1); /* not before the next checkpoint */
  feed(r, "SES4", 1, T + 16000, WWT | CW_HAVE_STOP, 0, 104, 33, 0, CW_STOP_MANUAL);
  CHECK_EQ(got.n, 2);
  expect(&got.s[1], T, T + 16000, 4, 150, 33.3, 5, "manual");
  cw_session_t back;
  cw_alert_event_t env;
  cw_session_wrap(&got.s[1], &env);
  CHECK(cw_session_unwrap(&env, &back));
  CHECK(memcmp(&back, &got.s[1], sizeof back) == 0);
  det_free(r);
}

/* A clean stop writes the open sessions once as of their last reading,
 * between checkpoints; with session_checkpoint_s 0 it writes none. */
CW_TEST(detect_session_write_open_at_stop) {
  for (int off = 0; off < 2; off++) {
    cw_detect_cfg_t cfg;
    cw_detect_cfg_defaults(&cfg);
    CHECK_EQ(cw_detect_cfg_set(&cfg, "session_checkpoint_s", off ? "0" : "300"), 0);
    det_rec_t *r = det_new(&cfg);
    sess_rec_t got = {0};
    cw_engine_on_session(r->e, on_session, &got);
    feed(r, "SES5", 1, T, WWT, 150, 10, 31, 0, 0);
    cw_engine_sweep(r->e, T + 500); /* arms the first checkpoint, writes nothing */
    feed(r, "SES5", 1, T + 1000, WWT, 150, 11, 32, 0, 0);
    feed(r, "SES5", 2, T + 1000, CW_HAVE_W, 2, 0, 0, 0, 0); /* idle: no session */
    CHECK_EQ(got.n, 0);
    cw_engine_write_open_sessions(r->e);
    if (off) {
      CHECK_EQ(got.n, 0);
    } else {
      CHECK_EQ(got.n, 1);
      CHECK_EQ(got.s[0].socket, 1);
      expect(&got.s[0], T, T + 1000, 1, 150, 32, 2, "restart");
    }
    det_free(r);
  }
}
