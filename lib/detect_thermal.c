/* detect_thermal.c - thermal_runaway detector (docs/DETECTORS.md).
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
  uint16_t idx = (uint16_t)q;
  cw_therm_bucket_t *b = &th->b[((q % CW_THERM_NB) + CW_THERM_NB) % CW_THERM_NB];
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
  uint16_t cur = (uint16_t)(ts / bms);
  double bs = (double)bms / 1000.0;
  double sw = 0, sx = 0, st = 0, xmin = INFINITY, xmax = -INFINITY;
  double xs[CW_THERM_NB], ts_[CW_THERM_NB], ws[CW_THERM_NB];
  int k = 0;
  for (int i = 0; i < CW_THERM_NB; i++) {
    const cw_therm_bucket_t *b = &th->b[i];
    uint16_t age = (uint16_t)(cur - b->idx);
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
  /* ages in ms (raw samples are all younger than 2^31 ms, see ts32) */
  int64_t age[CW_THERM_NRAW];
  for (int i = 0; i < th->raw_n; i++) age[i] = (int64_t)(uint32_t)((uint32_t)ts - th->raw[i].ts32);
  int old = -1;
  for (int i = 0; i < th->raw_n; i++)
    if (age[i] >= need && age[i] <= RATE_MAX_SPAN_MS && (old < 0 || age[i] < age[old])) old = i;
  if (old < 0) return false;
  double span = (double)age[old] / 1000.0;
  double slope = (t - th->raw[old].t) / span;
  if (!(slope >= cfg->thermal_rate_crit_c_s)) return false;
  double mid_age = (double)age[old] / 2.0;
  int mid = -1;
  for (int i = 0; i < th->raw_n; i++)
    if (age[i] < age[old] && age[i] > 0 &&
        (mid < 0 || fabs((double)age[i] - mid_age) < fabs((double)age[mid] - mid_age)))
      mid = i;
  if (mid >= 0) {
    double half = cfg->thermal_rate_crit_c_s / 2.0;
    double s1 = (th->raw[mid].t - th->raw[old].t) / ((double)(age[old] - age[mid]) / 1000.0);
    double s2 = (t - th->raw[mid].t) / ((double)age[mid] / 1000.0);
    if (s1 < half || s2 < half) return false;
  }
  *rate = slope;
  *span_s = span;
  return true;
}

static void raw_push(cw_thermal_state_t *th, int64_t ts, float t) {
  if (th->raw_n) {
    const cw_therm_raw_t *newest = &th->raw[(th->raw_head + CW_THERM_NRAW - 1) % CW_THERM_NRAW];
    if ((uint32_t)((uint32_t)ts - newest->ts32) < RAW_MIN_GAP_MS) return;
  }
  th->raw[th->raw_head] = (cw_therm_raw_t){.ts32 = (uint32_t)ts, .t = t};
  th->raw_head = (uint8_t)((th->raw_head + 1) % CW_THERM_NRAW);
  if (th->raw_n < CW_THERM_NRAW) th->raw_n++;
}

static void set(cw_verdict_t *v, cw_severity_t sev, double value, double thr, const char *unit) {
  v->sev = sev;
  v->value = value;
  v->threshold = thr;
  v->unit = unit;
}

/* Rise rule with the glitch guard. A rise seen while the socket draws no
 * current and nothing corroborates it (no smoke, no neighbour alert, no hot
 * ambient, no power cut) may be a probe event: a probe re-seated or knocked
 * steps by several degrees and then stays flat, while a real runaway keeps
 * rising. Such a rise warns only once it has held for thermal_confirm_s; if
 * it ends before, it was a sensor event (cx->sensor_event). Returns whether
 * the rise rule warns on this reading. */
/* Lowest sub-bucket mean temperature in the window: the level before a rise. */
static float window_low(const cw_thermal_state_t *th, int64_t bms, int64_t ts) {
  uint16_t cur = (uint16_t)(ts / bms);
  float lo = INFINITY;
  for (int i = 0; i < CW_THERM_NB; i++) {
    const cw_therm_bucket_t *b = &th->b[i];
    if (b->n && (uint16_t)(cur - b->idx) <= CW_THERM_WIN && b->sum_t / b->n < lo)
      lo = b->sum_t / b->n;
  }
  return lo;
}

static bool rise_guard(const cw_detect_cfg_t *cfg, cw_thermal_state_t *th, const cw_reading_t *r,
                       bool rise_hit, cw_therm_ctx_t *cx) {
  bool pending = th->fl & CW_TH_PENDING;
  int64_t bms = bucket_ms(cfg);
  uint16_t now_idx = (uint16_t)(r->ts_ms / bms);
  if (!rise_hit) {
    if (pending) {
      th->fl &= (uint8_t)~CW_TH_PENDING;
      /* a rise that ended above the warning temperature is not a probe event */
      cx->sensor_event = r->t < cfg->thermal_warn_c;
      cx->step_from = (float)th->pend_from / 10.0f;
      cx->step_to = r->t;
    }
    return false;
  }
  if (!pending) {
    /* Already warning (confirmed, or started with current / corroboration),
     * or a new rise that needs no confirmation. */
    if ((th->fl & CW_TH_RISE_WARN) || !cx->no_current || cx->corroborated) return true;
    float lo = window_low(th, bms, r->ts_ms);
    th->fl |= CW_TH_PENDING;
    th->pend_idx = now_idx;
    th->pend_from = (int16_t)lrintf(isfinite(lo) && fabsf(lo) < 3000 ? lo * 10.0f : 0.0f);
    return false;
  }
  if (cx->corroborated || !cx->no_current ||
      (double)(uint16_t)(now_idx - th->pend_idx) * (double)bms >= cfg->thermal_confirm_s * 1000.0) {
    th->fl &= (uint8_t)~CW_TH_PENDING;
    return true;
  }
  return false;
}

void cw__thermal_eval(const cw_detect_cfg_t *cfg, cw_sock_t *s, const cw_reading_t *r,
                      cw_therm_ctx_t *cx, cw_verdict_t *out) {
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
  bool rate_hit = false, rise_hit = false, have_slope = false;
  if (have_t) {
    rate_hit = rate_rule(th, cfg, r->ts_ms, r->t, &rate, &span);
    raw_push(th, r->ts_ms, r->t);
    bucket_add(th, bucket_ms(cfg), r->ts_ms, r->t);
    if (rise_slope(th, cfg, r->ts_ms, &rise)) {
      have_slope = true;
      rise *= 60.0; /* C/min */
      if (rise >= cfg->thermal_rise_warn_c_min) {
        if (th->rise_count < UINT8_MAX) th->rise_count++;
      } else {
        th->rise_count = 0;
      }
    }
    rise_hit = th->rise_count >= cfg->thermal_rise_warn_count &&
               rise >= cfg->thermal_rise_warn_c_min;
    if (have_slope && rise >= cfg->thermal_fusion_rise_c_min)
      th->fl |= CW_TH_RISING;
    else if (have_slope)
      th->fl &= (uint8_t)~CW_TH_RISING;
    /* Only a rising socket needs to know about its neighbours. */
    if ((th->fl & CW_TH_RISING) || rise_hit || (th->fl & CW_TH_PENDING)) cw__therm_neighbours(cx);
    rise_hit = rise_guard(cfg, th, r, rise_hit, cx);
    if (rise_hit)
      th->fl |= CW_TH_RISE_WARN;
    else
      th->fl &= (uint8_t)~CW_TH_RISE_WARN;
  }
  bool rising = have_t && (th->fl & CW_TH_RISING);
  /* Fusion (docs/DETECTORS.md): a socket whose own temperature is still
   * rising is critical when a neighbour at the same station is in thermal
   * critical (fire spreads between parked packs: the FSRI neighbour cells
   * ignite 25-800 s after the heated one), or when its own rise warning is
   * corroborated by a neighbour's thermal warning, hot ambient or a sudden
   * loss of charging power (BMS cut-off). */
  bool fused = rising && (cx->neighbour_crit || (rise_hit && cx->corroborated));

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
  } else if (fused) {
    set(out, CW_SEV_CRITICAL, rise, cfg->thermal_fusion_rise_c_min, "C/min");
    cw_verdict_msg(out,
                   cx->neighbour_crit ? "temperature rising %.1f C/min at %.1f C next to a "
                                        "socket in thermal critical"
                                      : "temperature rising %.1f C/min at %.1f C, corroborated "
                                        "(neighbour alert, hot ambient or power cut)",
                   rise, r->t, 0);
  } else if (have_t && r->t >= cfg->thermal_warn_c) {
    set(out, CW_SEV_WARNING, r->t, cfg->thermal_warn_c, "C");
    cw_verdict_msg(out, "temperature %.1f C at or above %.0f C", r->t, cfg->thermal_warn_c, 0);
  } else if (rise_hit) {
    set(out, CW_SEV_WARNING, rise, cfg->thermal_rise_warn_c_min, "C/min");
    cw_verdict_msg(out, "temperature rising %.1f C/min over %.0f s", rise,
                   cfg->thermal_rise_window_s, 0);
  }
}
