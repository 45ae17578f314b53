/* detect_thermal.c - thermal_runaway detector (DESIGN.md section 4).
 * Warning: t >= thermal_warn_c, or a least-squares rise >= 2 C/min over the
 * last ~60 s on consecutive evaluations. Critical: t >= thermal_crit_c, a rise
 * >= 1 C/s held for >= 3 s (GB 38031-2020 annex C.5.3.7), smoke, or a device
 * stop for over_temp/smoke. Works from 1 s to 30 s sampling in O(1) memory. */
#include <math.h>
#include <string.h>

#include "detect_int.h"

#define RAW_MIN_GAP_MS 750      /* raw samples kept >= this apart (1 Hz data fits 3 s) */
#define RATE_MAX_SPAN_MS 120000 /* beyond this gap a two-point slope says little */
#define RISE_MIN_COVER 0.75     /* the window must span >= 75 % of thermal_rise_window_s */

void cw__thermal_reset(cw_thermal_state_t *th) { memset(th, 0, sizeof(*th)); }

static int64_t bucket_ms(const cw_detect_cfg_t *cfg) {
  int64_t b = llround(cfg->thermal_rise_window_s * 1000.0 / CW_THERM_WIN);
  return b < 1 ? 1 : b;
}

static void bucket_add(cw_thermal_state_t *th, int64_t bms, int64_t ts, float t) {
  int64_t q = ts / bms;
  uint32_t idx = (uint32_t)q;
  cw_therm_bucket_t *b = &th->b[idx % CW_THERM_NB];
  if (b->n == 0 || b->idx != idx) {
    b->idx = idx;
    b->n = 0;
    b->sum_dx = 0;
    b->sum_t = 0;
  }
  if (b->n == UINT16_MAX) return; /* centroid is already well defined */
  b->sum_dx += (float)((double)(ts - q * bms) / 1000.0);
  b->sum_t += t;
  b->n++;
}

/* Weighted least-squares slope (C/s) over the centroids of the sub-buckets
 * within the window ending at ts. Noise sigma 0.3 C at 1 Hz gives a slope
 * sigma of ~0.14 C/min, far below the 2 C/min threshold (sample-to-sample
 * differences would give ~25 C/min). Returns false if the window is thin. */
static bool rise_slope(const cw_thermal_state_t *th, const cw_detect_cfg_t *cfg, int64_t ts,
                       double *slope) {
  int64_t bms = bucket_ms(cfg);
  uint32_t cur = (uint32_t)(ts / bms);
  double bs = (double)bms / 1000.0;
  double sw = 0, sx = 0, st = 0, xmin = INFINITY, xmax = -INFINITY;
  double xs[CW_THERM_NB], ts_[CW_THERM_NB], ws[CW_THERM_NB];
  int k = 0;
  for (int i = 0; i < CW_THERM_NB; i++) {
    const cw_therm_bucket_t *b = &th->b[i];
    uint32_t age = cur - b->idx;
    if (b->n == 0 || age > CW_THERM_WIN) continue;
    double x = -(double)age * bs + b->sum_dx / b->n;
    double w = b->n;
    xs[k] = x;
    ts_[k] = b->sum_t / b->n;
    ws[k] = w;
    k++;
    sw += w;
    sx += w * x;
    st += w * ts_[k - 1];
    if (x < xmin) xmin = x;
    if (x > xmax) xmax = x;
  }
  if (k < 2 || xmax - xmin < RISE_MIN_COVER * cfg->thermal_rise_window_s) return false;
  double mx = sx / sw, mt = st / sw, sxx = 0, sxt = 0;
  for (int i = 0; i < k; i++) {
    sxx += ws[i] * (xs[i] - mx) * (xs[i] - mx);
    sxt += ws[i] * (xs[i] - mx) * (ts_[i] - mt);
  }
  if (sxx <= 0) return false;
  *slope = sxt / sxx;
  return true;
}

/* Rise >= rate over >= rate_s ending now. With several samples in the span,
 * "sustained" also needs each half to rise at >= half the rate, so a single
 * step (a glitch) is not a runaway. With sparse sampling (e.g. 30 s) the
 * span is the gap to the previous sample. */
static bool rate_rule(const cw_thermal_state_t *th, const cw_detect_cfg_t *cfg, int64_t ts,
                      float t, double *rate, double *span_s) {
  int64_t need = llround(cfg->thermal_rate_crit_s * 1000.0);
  if (need < 1) need = 1;
  const cw_therm_raw_t *old = NULL;
  for (int i = 0; i < th->raw_n; i++) {
    const cw_therm_raw_t *r = &th->raw[i];
    if (r->ts_ms <= ts - need && ts - r->ts_ms <= RATE_MAX_SPAN_MS &&
        (!old || r->ts_ms > old->ts_ms))
      old = r;
  }
  if (!old) return false;
  double span = (double)(ts - old->ts_ms) / 1000.0;
  double slope = (t - old->t) / span;
  if (!(slope >= cfg->thermal_rate_crit_c_s)) return false;
  double mid_ts = (double)(ts + old->ts_ms) / 2.0;
  const cw_therm_raw_t *mid = NULL;
  for (int i = 0; i < th->raw_n; i++) {
    const cw_therm_raw_t *r = &th->raw[i];
    if (r->ts_ms > old->ts_ms && r->ts_ms < ts &&
        (!mid || fabs((double)r->ts_ms - mid_ts) < fabs((double)mid->ts_ms - mid_ts)))
      mid = r;
  }
  if (mid) {
    double half = cfg->thermal_rate_crit_c_s / 2.0;
    double s1 = (mid->t - old->t) / ((double)(mid->ts_ms - old->ts_ms) / 1000.0);
    double s2 = (t - mid->t) / ((double)(ts - mid->ts_ms) / 1000.0);
    if (s1 < half || s2 < half) return false;
  }
  *rate = slope;
  *span_s = span;
  return true;
}

static void raw_push(cw_thermal_state_t *th, int64_t ts, float t) {
  if (th->raw_n) {
    const cw_therm_raw_t *newest = &th->raw[(th->raw_head + CW_THERM_NRAW - 1) % CW_THERM_NRAW];
    if (ts - newest->ts_ms < RAW_MIN_GAP_MS) return;
  }
  th->raw[th->raw_head] = (cw_therm_raw_t){.ts_ms = ts, .t = t};
  th->raw_head = (uint8_t)((th->raw_head + 1) % CW_THERM_NRAW);
  if (th->raw_n < CW_THERM_NRAW) th->raw_n++;
}

static void set(cw_verdict_t *v, cw_severity_t sev, double value, double thr, const char *unit) {
  v->sev = sev;
  v->value = value;
  v->threshold = thr;
  v->unit = unit;
}

void cw__thermal_eval(const cw_detect_cfg_t *cfg, cw_sock_t *s, const cw_reading_t *r,
                      cw_verdict_t *out) {
  cw_thermal_state_t *th = &s->th;
  bool have_t = r->have & CW_HAVE_T;
  bool smoke = (r->have & CW_HAVE_SMOKE) && r->smoke;
  bool stop = (r->have & CW_HAVE_STOP) &&
              (r->stop == CW_STOP_OVER_TEMP || r->stop == CW_STOP_SMOKE);
  memset(out, 0, sizeof(*out));
  out->known = have_t || (r->have & CW_HAVE_SMOKE) || stop;
  out->unit = "C";
  if (!out->known) return;

  double rate = 0, span = 0, rise = 0;
  bool rate_hit = false, rise_hit = false;
  if (have_t) {
    rate_hit = rate_rule(th, cfg, r->ts_ms, r->t, &rate, &span);
    raw_push(th, r->ts_ms, r->t);
    bucket_add(th, bucket_ms(cfg), r->ts_ms, r->t);
    if (rise_slope(th, cfg, r->ts_ms, &rise)) {
      rise *= 60.0; /* C/min */
      if (rise >= cfg->thermal_rise_warn_c_min) {
        if (th->rise_count < UINT8_MAX) th->rise_count++;
      } else {
        th->rise_count = 0;
      }
    }
    rise_hit = th->rise_count >= cfg->thermal_rise_warn_count &&
               rise >= cfg->thermal_rise_warn_c_min;
  }

  /* Highest severity wins; within one, the most specific cause names the alert. */
  if (stop) {
    set(out, CW_SEV_CRITICAL, have_t ? r->t : 0, cfg->thermal_crit_c, "C");
    cw_verdict_msg(out, r->stop == CW_STOP_SMOKE ? "device stopped charging: smoke"
                                                 : "device stopped charging: over temperature",
                   0, 0, 0);
  } else if (smoke) {
    set(out, CW_SEV_CRITICAL, 1, 1, "smoke"); /* a flag: value 1 = smoke present */
    cw_verdict_msg(out, have_t ? "smoke detected at %.1f C" : "smoke detected", r->t, 0, 0);
  } else if (rate_hit) {
    set(out, CW_SEV_CRITICAL, rate, cfg->thermal_rate_crit_c_s, "C/s");
    cw_verdict_msg(out, "temperature rising %.1f C/s for %.0f s", rate, span, 0);
  } else if (have_t && r->t >= cfg->thermal_crit_c) {
    set(out, CW_SEV_CRITICAL, r->t, cfg->thermal_crit_c, "C");
    cw_verdict_msg(out, "temperature %.1f C at or above %.0f C", r->t, cfg->thermal_crit_c, 0);
  } else if (have_t && r->t >= cfg->thermal_warn_c) {
    set(out, CW_SEV_WARNING, r->t, cfg->thermal_warn_c, "C");
    cw_verdict_msg(out, "temperature %.1f C at or above %.0f C", r->t, cfg->thermal_warn_c, 0);
  } else if (rise_hit) {
    set(out, CW_SEV_WARNING, rise, cfg->thermal_rise_warn_c_min, "C/min");
    cw_verdict_msg(out, "temperature rising %.1f C/min over %.0f s", rise,
                   cfg->thermal_rise_window_s, 0);
  }
}
