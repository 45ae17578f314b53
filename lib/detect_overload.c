/* detect_overload.c - overload detector (docs/DETECTORS.md). Warning: w
 * above overload_tamper_w (a tampered or high-power charger) for >= 5 min, or
 * the station's summed load above a fraction of its breaker. Critical: w above
 * the socket's rated_w for >= 10 s, or a device stop for over_power. Durations
 * run from the first reading of an unbroken run above the limit, so an inrush
 * spike shorter than overload_rated_s raises nothing. */
#include <string.h>

#include "detect_int.h"

/* A run goes on through readings without w: every reading adds its step. */
static void run_advance(int32_t *run, int64_t step_ms) {
  if (!*run || step_ms <= 0) return;
  int64_t v = (int64_t)*run + step_ms;
  *run = v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

/* Update a "continuously above" timer; returns the run length in s (or -1). */
static double run_s(int32_t *run, bool above) {
  if (!above) {
    *run = 0;
    return -1;
  }
  if (!*run) *run = 1;
  return (double)(*run - 1) / 1000.0;
}

/* The highest draw a legitimate charger at this socket may have: the
 * socket's own charge_max_w, else its station's, else overload_tamper_w. */
static double charge_max(const cw_detect_cfg_t *cfg, const cw_station_policy_t *pol,
                         const cw_sock_t *s) {
  if (s->charge_max_w > 0) return s->charge_max_w;
  if (pol->charge_max_w > 0) return pol->charge_max_w;
  return cfg->overload_tamper_w;
}

void cw__overload_eval(const cw_detect_cfg_t *cfg, const cw_station_policy_t *pol, cw_sock_t *s,
                       const cw_reading_t *r, int64_t prev_ts, cw_verdict_t *out) {
  if (prev_ts) {
    run_advance(&s->ov.rated_run, r->ts_ms - prev_ts);
    run_advance(&s->ov.tamper_run, r->ts_ms - prev_ts);
  }
  bool have_w = r->have & CW_HAVE_W;
  bool stop = (r->have & CW_HAVE_STOP) && r->stop == CW_STOP_OVER_POWER;
  memset(out, 0, sizeof(*out));
  out->known = have_w || stop;
  out->unit = "W";
  if (!out->known) return;

  double rated = s->rated_w > 0 ? s->rated_w : cfg->default_rated_w;
  double limit = charge_max(cfg, pol, s);
  double over_rated = -1, over_tamper = -1;
  if (have_w) {
    over_rated = run_s(&s->ov.rated_run, r->w > rated);
    over_tamper = run_s(&s->ov.tamper_run, r->w > limit);
  }
  if (stop) {
    out->sev = CW_SEV_CRITICAL;
    out->value = have_w ? r->w : 0;
    out->threshold = rated;
    cw_verdict_msg(out, "device stopped charging: over power", 0, 0, 0);
  } else if (over_rated >= cfg->overload_rated_s) {
    out->sev = CW_SEV_CRITICAL;
    out->value = r->w;
    out->threshold = rated;
    cw_verdict_msg(out, "power %.0f W above rated %.0f W for %.0f s", r->w, rated, over_rated);
  } else if (over_tamper >= cfg->overload_tamper_s) {
    out->sev = CW_SEV_WARNING;
    out->value = r->w;
    out->threshold = limit;
    cw_verdict_msg(out, "power %.0f W above the %.0f W charger limit for %.0f min", r->w, limit,
                   over_tamper / 60.0);
  }
}

void cw__overload_station_eval(const cw_detect_cfg_t *cfg, const cw_station_t *st,
                               cw_verdict_t *out) {
  memset(out, 0, sizeof(*out));
  out->unit = "W";
  /* Always a verdict: with breaker_w set to 0 (unknown) at a reload the
   * condition is absent, so an alert raised under the old breaker clears. */
  out->known = true;
  if (!(st->policy.breaker_w > 0)) return;
  double limit = cfg->overload_station_frac * st->policy.breaker_w;
  if (st->sum_w > limit) {
    out->sev = CW_SEV_WARNING;
    out->value = st->sum_w;
    out->threshold = limit;
    cw_verdict_msg(out, "station load %.0f W above %.0f %% of breaker %.0f W", st->sum_w,
                   cfg->overload_station_frac * 100.0, st->policy.breaker_w);
  }
}
