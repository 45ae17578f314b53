/* detect_session.c - charging_sessions records (lib/session.h) built beside
 * the overnight_charging detector's session: a record opens with the
 * session (first reading with w >= charging_w, or state charging without
 * w) and ends with it: the device's stop value, state full (full) or idle
 * (idle), or w under charging_w for 2 min (idle, ended at the first low
 * reading); or earlier when the socket goes silent past its offline
 * threshold (timeout, ended at its last reading). Open records are written
 * every session_checkpoint_s as restart (ended at their last reading), so
 * one open when the daemon stops is kept with that reason; the final write
 * of the same session (same start) replaces it. */
#include <math.h>
#include <string.h>

#include "detect_int.h"

#define WH_MAX_GAP_MS 600000 /* as the overnight energy: a longer silence is no evidence */

static bool rec_open(const cw_sock_t *s) {
  return s->on.session_start && !(s->flags & CW_SOCK_SESS_CUT);
}

static void rec_add(cw_sock_t *s, const cw_reading_t *r, int64_t prev_ts, bool first) {
  cw_session_state_t *se = &s->se;
  if (r->have & CW_HAVE_WH) {
    float wh = (float)r->wh;
    if (!isnan(se->wh_last)) se->energy_wh += wh >= se->wh_last ? wh - se->wh_last : wh;
    se->wh_last = wh;
  } else if (isnan(se->wh_last) && !first && (r->have & CW_HAVE_W) && prev_ts && r->ts_ms > prev_ts) {
    int64_t dt = r->ts_ms - prev_ts; /* no counter: the integral of w */
    if (dt > WH_MAX_GAP_MS) dt = WH_MAX_GAP_MS;
    se->energy_wh += (float)((double)r->w * (double)dt / 3600000.0);
  }
  if ((r->have & CW_HAVE_W) && r->w > se->peak_w) se->peak_w = r->w;
  if (r->have & CW_HAVE_T) {
    double t10 = round((double)r->t * 10.0);
    int16_t t = t10 > INT16_MAX ? INT16_MAX : t10 < -INT16_MAX ? -INT16_MAX : (int16_t)t10;
    if (t > se->peak_t) se->peak_t = t;
  }
  if (se->readings < UINT16_MAX) se->readings++;
}

static void rec_start(cw_sock_t *s, const cw_reading_t *r) {
  cw_session_state_t *se = &s->se;
  int64_t off = r->ts_ms - s->on.session_start;
  se->start_off = off < 0 ? 0 : off > INT32_MAX ? INT32_MAX : (int32_t)off;
  se->wh_last = NAN;
  se->energy_wh = 0;
  se->peak_w = -1;
  se->peak_t = INT16_MIN;
  se->readings = 0;
  s->flags &= (uint8_t)~CW_SOCK_SESS_CUT;
  rec_add(s, r, 0, true);
}

static void rec_emit(cw_engine_t *e, const cw_station_t *st, const cw_sock_t *s, int64_t start,
                     int64_t end_ms, cw_session_end_t why) {
  if (!e->on_session) return;
  const cw_session_state_t *se = &s->se;
  cw_session_t out;
  memset(&out, 0, sizeof out);
  out.start_ms = start + se->start_off;
  out.end_ms = end_ms < out.start_ms ? out.start_ms : end_ms;
  out.energy_wh = se->energy_wh;
  out.peak_w = se->peak_w >= 0 ? se->peak_w : NAN;
  out.peak_t = se->peak_t != INT16_MIN ? (float)se->peak_t / 10.0f : NAN;
  out.readings = se->readings;
  out.socket = s->socket;
  out.end = (uint8_t)why;
  memcpy(out.station, st->name, sizeof out.station);
  e->on_session(e->session_ctx, &out);
}

void cw__session_step(cw_engine_t *e, const cw_station_t *st, cw_sock_t *s, const cw_reading_t *r,
                      int64_t prev_ts, int64_t start0, int32_t low0) {
  int64_t start1 = s->on.session_start;
  if (start0) {
    bool had = !(s->flags & CW_SOCK_SESS_CUT);
    if (had) rec_add(s, r, prev_ts, false);
    if (start1 == start0) { /* goes on */
      if (!had) rec_start(s, r); /* back from a timeout, still charging */
      return;
    }
    if (had) { /* ended by this reading */
      cw_session_end_t why = CW_SEND_IDLE;
      int64_t end_ms = r->ts_ms;
      if ((r->have & CW_HAVE_STOP) && r->stop > CW_STOP_NONE && r->stop <= CW_STOP_SMOKE)
        why = (cw_session_end_t)r->stop;
      else if ((r->have & CW_HAVE_STATE) && r->state == CW_STATE_FULL)
        why = CW_SEND_FULL;
      else if (!((r->have & CW_HAVE_STATE) && r->state == CW_STATE_IDLE) && low0 >= 0)
        /* 2 min under charging_w: ended when it stopped drawing */
        end_ms = start0 + low0;
      rec_emit(e, st, s, start0, end_ms, why);
    }
    s->flags &= (uint8_t)~CW_SOCK_SESS_CUT;
  }
  if (start1) rec_start(s, r); /* a new session (never on the reading that ended one) */
}

void cw__session_timeout(cw_engine_t *e, const cw_station_t *st, cw_sock_t *s) {
  if (!rec_open(s)) return;
  rec_emit(e, st, s, s->on.session_start, s->last_ts, CW_SEND_TIMEOUT);
  s->flags |= CW_SOCK_SESS_CUT;
}

void cw__session_checkpoint(cw_engine_t *e, int64_t now_ms) {
  int64_t every = (int64_t)llround(e->cfg.session_checkpoint_s * 1000.0);
  if (every <= 0 || !e->on_session) return;
  if (!e->next_ckpt_ms) e->next_ckpt_ms = now_ms + every;
  if (now_ms < e->next_ckpt_ms) return;
  e->next_ckpt_ms = now_ms + every;
  cw_engine_write_open_sessions(e);
}

void cw_engine_write_open_sessions(cw_engine_t *e) {
  if (!e->on_session || !(e->cfg.session_checkpoint_s > 0)) return; /* 0: never */
  for (uint32_t i = 0; i < e->tab.nso; i++) {
    const cw_sock_t *s = &e->tab.so[i];
    if (rec_open(s)) rec_emit(e, &e->tab.st[s->station], s, s->on.session_start, s->last_ts,
                              CW_SEND_RESTART);
  }
}

void cw_engine_on_session(cw_engine_t *e, cw_session_fn fn, void *ctx) {
  e->on_session = fn;
  e->session_ctx = ctx;
}
