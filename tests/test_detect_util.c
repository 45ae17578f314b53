/* test_detect_util.c - recorder, trace generator and event matcher for the
 * detection-engine tests (see test_detect_util.h). */
#include "test_detect_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_alert(void *ctx, const cw_alert_event_t *ev) {
  det_rec_t *r = ctx;
  if (r->n == r->cap) {
    int ncap = r->cap ? r->cap * 2 : 64;
    cw_alert_event_t *p = realloc(r->ev, (size_t)ncap * sizeof(*p));
    if (!p) abort();
    r->ev = p;
    r->cap = ncap;
  }
  r->ev[r->n++] = *ev;
}

static int64_t next_id(void *ctx) {
  det_rec_t *r = ctx;
  return ++r->next_id;
}

det_rec_t *det_new(const cw_detect_cfg_t *cfg) {
  det_rec_t *r = calloc(1, sizeof(*r));
  if (!r) abort();
  r->next_id = 1000;
  r->e = cw_engine_new(cfg, on_alert, next_id, r);
  if (!r->e) abort();
  return r;
}

void det_free(det_rec_t *r) {
  if (!r) return;
  cw_engine_free(r->e);
  free(r->ev);
  free(r);
}

cw_reading_t det_reading(const char *station, uint8_t socket, int64_t ts_ms) {
  cw_reading_t rd;
  memset(&rd, 0, sizeof(rd));
  snprintf(rd.station, sizeof(rd.station), "%s", station);
  rd.socket = socket;
  rd.ts_ms = ts_ms;
  return rd;
}

cw_reject_t det_feed(det_rec_t *r, const cw_reading_t *rd) {
  return cw_engine_process(r->e, rd, rd->ts_ms);
}

/* xorshift64* + Box-Muller: reproducible noise without libc rand state. */
static double gauss(uint64_t *s) {
  double u[2];
  for (int i = 0; i < 2; i++) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    u[i] = ((double)((*s * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
  }
  return sqrt(-2.0 * log(u[0])) * cos(2.0 * M_PI * u[1]);
}

int det_run(det_rec_t *r, const char *station, uint8_t socket, int64_t start_ms,
            const det_seg_t *segs, int nseg, uint32_t seed) {
  uint64_t s = 0x9E3779B97F4A7C15ull ^ seed;
  int fed = 0;
  double off = 0;
  for (int i = 0; i < nseg; i++) {
    const det_seg_t *g = &segs[i];
    int steps = (int)llround(g->dur_s / g->step_s);
    for (int k = 0; k < steps; k++) {
      double f = (double)k * g->step_s / g->dur_s; /* value at the segment's end is t1 */
      int64_t ts = start_ms + llround((off + k * g->step_s) * 1000);
      cw_reading_t rd = det_reading(station, socket, ts);
      rd.have = g->fields;
      rd.w = (float)(g->w0 + (g->w1 - g->w0) * f);
      rd.t = (float)(g->t0 + (g->t1 - g->t0) * f + (g->noise_c > 0 ? g->noise_c * gauss(&s) : 0));
      rd.smoke = g->smoke;
      if (rd.have & CW_HAVE_STATE) rd.state = rd.w >= 15 ? CW_STATE_CHARGING : CW_STATE_IDLE;
      det_feed(r, &rd);
      fed++;
    }
    off += steps * g->step_s;
  }
  return fed;
}

static const char *kname(cw_kind_t k) {
  static const char *n[] = {"thermal", "overload", "overnight", "offline"};
  return (unsigned)k < 4 ? n[k] : "?";
}
static const char *ename(cw_event_t e) {
  return cw_event_name(e);
}

void det_dump(const det_rec_t *r, int64_t start_ms) {
  for (int i = 0; i < r->n; i++) {
    const cw_alert_event_t *e = &r->ev[i];
    fprintf(stderr, "      got %s/%u %s sev=%d %s at %.1f s id=%lld value=%.2f %s (%s)\n",
            e->station, e->socket, kname(e->kind), e->severity, ename(e->event),
            (double)(e->ts_ms - start_ms) / 1000.0, (long long)e->id, e->value, e->unit,
            e->message);
  }
}

int det_match(const det_rec_t *r, int64_t start_ms, const det_exp_t *exp, int n) {
  int ok = r->n == n;
  for (int i = 0; ok && i < n; i++) {
    const cw_alert_event_t *e = &r->ev[i];
    double t = (double)(e->ts_ms - start_ms) / 1000.0;
    ok = e->kind == exp[i].kind && e->severity == exp[i].sev && e->event == exp[i].ev &&
         e->socket == exp[i].socket && t >= exp[i].t_s - 1e-6 &&
         t <= exp[i].t_s + exp[i].tol_s + 1e-6;
  }
  if (!ok) {
    fprintf(stderr, "    events differ: expected %d\n", n);
    for (int i = 0; i < n; i++)
      fprintf(stderr, "      want socket %u %s sev=%d %s at %.1f (+%.1f) s\n", exp[i].socket,
              kname(exp[i].kind), exp[i].sev, ename(exp[i].ev), exp[i].t_s, exp[i].tol_s);
    det_dump(r, start_ms);
  }
  return ok;
}
