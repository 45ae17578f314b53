/* gen.c - synthetic city traffic for replay and benchmarks: stations of K
 * sockets reporting every interval, with realistic charger profiles
 * (lead-acid CC/CV/float, lithium with an abrupt stop, idle) and injected
 * anomalies written to a ground-truth CSV, plus the station/socket policy
 * rows (SQL) the scenario needs. Deterministic for a seed. Output is a
 * capture file (docs/CAPTURE.md) whose receive time equals the reading ts. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"

/* Detector thresholds the anomalies are shaped against (docs/DETECTORS.md). */
#define RATED_W 1000.0    /* sockets.rated_w default */
#define OVERLOAD_W 1200.0 /* sustained overload: > rated for >= 10 s */
#define TAMPER_W 800.0    /* > 700 W (overload_tamper_w) for >= 5 min: tampered/oversized charger */
#define TAMPER_MIN_S 300
#define CHARGING_W 15.0
#define NIGHT_MIN_S 300
#define OFFLINE_MIN_S 90
/* Local time of the stations (stations.utc_offset_min default) and night window. */
#define UTC_OFFSET_MIN 480
#define NIGHT_START_MIN (22 * 60)
#define NIGHT_END_MIN (6 * 60)
#define HEAT_C_PER_W 0.02
#define HEAT_TAU_S 1200.0

typedef enum { PROF_IDLE, PROF_LEAD, PROF_LITH } prof_t;
typedef enum { AN_NONE, AN_THERMAL, AN_OVERLOAD, AN_FORBIDDEN, AN_TAMPER, AN_SILENT, AN__N } an_t;
static const char *const an_name[AN__N] = {"none", "thermal", "overload", "forbidden", "tamper",
                                           "silent"};

typedef struct sock {
  prof_t prof;
  double sess_start_s; /* session start, seconds from the capture start (may be < 0) */
  double p0_w, cc_s, cv_s, float_w; /* lead-acid */
  double dur_s, p_start_w, p_end_w; /* lithium */
  double full_until_s;              /* lithium: unplugged after this */
  double next_plug_s;               /* idle: next session start */
  bool stop_sent;
  double wh, heat_c, last_s;
  int phase_s, phase_ms;
  an_t an;
  double an_start_s, an_end_s, ramp_s, peak_c, jump_base_c;
  bool truth_open;
  double night_first_s, night_last_s; /* current in-night charging run, -1 = none */
} sock_t;

typedef struct station {
  char code[16];
  double v0, amb0, amb_phase;
  int phase_s, phase_ms;
  bool forbid_night;
} station_t;

typedef struct truth {
  const char *kind, *severity;
  int station, socket;
  int64_t start_ms, end_ms;
  char desc[128];
} truth_t;

typedef struct gen {
  int nst, nsock, interval_s, duration_s;
  uint64_t rng;
  double anomaly_rate;
  bool batched;
  int64_t start_ms;
  station_t *st;
  sock_t *sk;
  truth_t *truth;
  size_t ntruth, captruth;
  FILE *out;
  uint64_t msgs, readings;
} gen_t;

/* splitmix64: small, fast, and the same sequence on every platform. */
static uint64_t rnd(gen_t *g) {
  uint64_t z = (g->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double unif(gen_t *g) { return (double)(rnd(g) >> 11) * (1.0 / 9007199254740992.0); }
static double range(gen_t *g, double lo, double hi) { return lo + (hi - lo) * unif(g); }
static double gauss(gen_t *g, double sd) {
  double u1 = unif(g), u2 = unif(g);
  if (u1 < 1e-300) u1 = 1e-300;
  return sd * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static truth_t *truth_add(gen_t *g, const char *kind, const char *sev, int st, int so,
                          int64_t start_ms, int64_t end_ms) {
  if (g->ntruth == g->captruth) {
    size_t cap = g->captruth ? g->captruth * 2 : 64;
    truth_t *t = realloc(g->truth, cap * sizeof *t);
    if (!t) return NULL;
    g->truth = t;
    g->captruth = cap;
  }
  truth_t *t = &g->truth[g->ntruth++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  t->severity = sev;
  t->station = st;
  t->socket = so;
  t->start_ms = start_ms;
  t->end_ms = end_ms;
  return t;
}

/* Session shapes. Lead-acid (48 V, 12-20 Ah packs): constant current at
 * 150-250 W for hours, a constant-voltage taper, then a float trickle below
 * the 15 W charging threshold. Lithium: the Ninebot trace in
 * shared/data/smartcharge-monitor-fixtures (71 W rising to 77 W over ~95 min,
 * a ~3 min taper to ~67 W, then an abrupt drop to 0 W). */
static void start_lead(gen_t *g, sock_t *s, double at_s) {
  s->prof = PROF_LEAD;
  s->sess_start_s = at_s;
  s->p0_w = range(g, 150, 250);
  s->cc_s = range(g, 3, 5) * 3600;
  s->cv_s = range(g, 1.5, 2.5) * 3600;
  s->float_w = range(g, 3, 8);
  s->stop_sent = false;
}
static void start_lith(gen_t *g, sock_t *s, double at_s) {
  s->prof = PROF_LITH;
  s->sess_start_s = at_s;
  s->dur_s = range(g, 90, 200) * 60;
  s->p_start_w = range(g, 69, 73);
  s->p_end_w = s->p_start_w + range(g, 4, 7);
  s->full_until_s = at_s + s->dur_s + range(g, 20, 90) * 60;
  s->stop_sent = false;
}
static void go_idle(gen_t *g, sock_t *s, double at_s) {
  s->prof = PROF_IDLE;
  s->next_plug_s = at_s + range(g, 10, 240) * 60;
}

/* Charger power at time t (no noise), with its state name and an optional stop. */
static double profile_w(gen_t *g, sock_t *s, double t, const char **state) {
  for (;;) {
    if (s->prof == PROF_IDLE) {
      if (t < s->next_plug_s) {
        *state = "idle";
        return 0;
      }
      if (unif(g) < 0.6) start_lead(g, s, s->next_plug_s);
      else start_lith(g, s, s->next_plug_s);
      continue;
    }
    double u = t - s->sess_start_s;
    if (u < 0) { /* planned session not plugged in yet */
      *state = "idle";
      return 0;
    }
    if (s->prof == PROF_LEAD) {
      *state = "charging";
      if (u < s->cc_s) return s->p0_w * (1.0 - 0.05 * u / s->cc_s);
      if (u < s->cc_s + s->cv_s)
        return s->float_w + (0.95 * s->p0_w - s->float_w) * exp(-(u - s->cc_s) / (s->cv_s / 4));
      *state = "full";
      return s->float_w;
    }
    /* lithium */
    if (u < s->dur_s - 180) {
      *state = "charging";
      return s->p_start_w + (s->p_end_w - s->p_start_w) * u / (s->dur_s - 180);
    }
    if (u < s->dur_s) {
      *state = "charging";
      return s->p_end_w - 10.0 * (u - (s->dur_s - 180)) / 180;
    }
    if (t < s->full_until_s) {
      *state = "full";
      return 0;
    }
    go_idle(g, s, s->full_until_s);
  }
}

static double ambient(const gen_t *g, const station_t *st, double t) {
  double hours = (double)g->start_ms / 3.6e6 + t / 3600.0;
  return st->amb0 + 3.0 * sin(2 * M_PI * hours / 24.0 + st->amb_phase);
}

static bool in_night(const gen_t *g, double t) {
  int64_t local_ms = g->start_ms + (int64_t)(t * 1000) + (int64_t)UTC_OFFSET_MIN * 60000;
  int min = (int)((local_ms / 60000) % 1440);
  if (min < 0) min += 1440;
  return min >= NIGHT_START_MIN || min < NIGHT_END_MIN;
}

/* One reading of socket so at t seconds; returns payload length in buf. */
static int reading(gen_t *g, int sti, int so, double t, char *buf, size_t cap, bool with_socket) {
  station_t *st = &g->st[sti];
  sock_t *s = &g->sk[sti * g->nsock + so];
  const char *state = "idle", *stop = NULL;
  double w = profile_w(g, s, t, &state);
  int smoke = 0;
  double extra_c = 0;

  if (s->prof == PROF_LITH && !strcmp(state, "full") && !s->stop_sent) {
    stop = "full";
    s->stop_sent = true;
  }
  if (s->an != AN_NONE && t >= s->an_start_s) {
    double u = t - s->an_start_s;
    switch (s->an) {
    case AN_THERMAL:
      /* FSRI cell 5 (shared/data/README.md): ~5 C/min heating, then > 1 C/s
       * to hundreds of C once the cell vents; smoke from the jump. */
      if (u < s->ramp_s) {
        extra_c = 5.0 / 60.0 * u;
      } else {
        double v = u - s->ramp_s;
        extra_c = 5.0 / 60.0 * s->ramp_s + 3.0 * (exp(v / 2.0) - 1.0);
        if (s->jump_base_c + extra_c > s->peak_c) extra_c = s->peak_c - s->jump_base_c;
        smoke = 1;
        if (v > 5) {
          w = 0;
          state = "fault";
        }
      }
      break;
    case AN_OVERLOAD:
      if (t < s->an_end_s) {
        w = OVERLOAD_W + gauss(g, 10);
        state = "charging";
      } else {
        w = 0;
        state = "fault";
        if (!s->stop_sent) stop = "over_power";
        s->stop_sent = true;
      }
      break;
    case AN_TAMPER:
      if (t < s->an_end_s) {
        w = TAMPER_W + gauss(g, 5);
        state = "charging";
      }
      break;
    default:
      break;
    }
  }
  if (w > 0) w = fmax(0, w * (1.0 + gauss(g, 0.005)));

  /* Physics since the last reading: energy and a first-order thermal lag
   * (20 min time constant, 0.02 C per W at steady state: a 250 W charger
   * warms its socket by ~5 C, a 1200 W overload by ~24 C, at most ~1.2 C/min,
   * below the 2 C/min rise warning, so overload does not look like runaway). */
  double dt = t - s->last_s;
  if (dt > 0) {
    s->wh += w * dt / 3600.0;
    s->heat_c += (HEAT_C_PER_W * w - s->heat_c) * (1.0 - exp(-dt / HEAT_TAU_S));
    s->last_s = t;
  }
  double amb = ambient(g, st, t);
  double tc = amb + s->heat_c + gauss(g, 0.2);
  if (s->an == AN_THERMAL && t >= s->an_start_s) {
    if (t - s->an_start_s < s->ramp_s + 1e-9 && s->jump_base_c == 0) s->jump_base_c = tc;
    tc += extra_c;
    if (tc > 1150) tc = 1150;
  }
  double v = st->v0 + 1.0 * sin(t / 300.0 + st->amb_phase) + gauss(g, 0.4);
  v = fmin(235, fmax(220, v));
  double a = w / v;

  /* Ground truth for night charging at a station that forbids it (a forbidden
   * socket already has its open overnight_charging alert: one per kind). */
  if (st->forbid_night && s->an != AN_FORBIDDEN && w >= CHARGING_W && in_night(g, t)) {
    if (s->night_first_s < 0) s->night_first_s = t;
    s->night_last_s = t;
  } else if (s->night_first_s >= 0) {
    if (s->night_last_s - s->night_first_s >= NIGHT_MIN_S) {
      truth_t *tr = truth_add(g, "overnight_charging", "warning", sti, so + 1,
                              g->start_ms + (int64_t)((s->night_first_s + NIGHT_MIN_S) * 1000),
                              g->start_ms + (int64_t)(s->night_last_s * 1000));
      if (tr) snprintf(tr->desc, sizeof tr->desc, "charging in the night window >= 5 min");
    }
    s->night_first_s = -1;
  }

  int64_t ts = g->start_ms + (int64_t)llround(t * 1000);
  int n = snprintf(buf, cap, "{%s%.0d%s\"ts\":%lld,\"v\":%.1f,\"a\":%.2f,\"w\":%.1f,\"wh\":%.1f,"
                   "\"t\":%.1f,\"smoke\":%d,\"state\":\"%s\"%s%s%s}",
                   with_socket ? "\"socket\":" : "", with_socket ? so + 1 : 0,
                   with_socket ? "," : "", (long long)ts, v, a, w, s->wh, tc, smoke, state,
                   stop ? ",\"stop\":\"" : "", stop ? stop : "", stop ? "\"" : "");
  g->readings++;
  return n;
}

/* Does anomaly kind k fit in the time left after its start? */
static bool an_fits(const gen_t *g, an_t k, double rest) {
  int I = g->interval_s;
  switch (k) {
  case AN_THERMAL: return rest >= 60;
  case AN_OVERLOAD: return rest >= 30;
  case AN_FORBIDDEN: return rest >= 2 * I;
  case AN_TAMPER: return rest >= TAMPER_MIN_S + 2 * I;
  case AN_SILENT: return rest >= fmax(OFFLINE_MIN_S, 3 * I) + 2 * I;
  default: return false;
  }
}

static int plan_anomalies(gen_t *g) {
  size_t n = (size_t)g->nst * g->nsock;
  size_t want = (size_t)llround(g->anomaly_rate * (double)n);
  if (g->anomaly_rate > 0 && want == 0) want = 1;
  if (want > n) want = n;
  size_t *idx = malloc(n * sizeof *idx);
  if (!idx) return -ENOMEM;
  for (size_t i = 0; i < n; i++) idx[i] = i;
  an_t next = AN_THERMAL;
  for (size_t i = 0; i < want; i++) {
    size_t j = i + (size_t)(rnd(g) % (n - i)); /* partial Fisher-Yates */
    size_t tmp = idx[i];
    idx[i] = idx[j];
    idx[j] = tmp;
    sock_t *s = &g->sk[idx[i]];
    int sti = (int)(idx[i] / g->nsock), so = (int)(idx[i] % g->nsock);
    double D = g->duration_s;
    double at = floor(range(g, 0.1 * D, 0.4 * D));
    an_t k = AN_NONE;
    for (int tries = 0; tries < AN__N - 1; tries++) {
      an_t c = next;
      next = next == AN_SILENT ? AN_THERMAL : (an_t)(next + 1);
      if (an_fits(g, c, D - at)) {
        k = c;
        break;
      }
    }
    if (k == AN_NONE) continue;
    s->an = k;
    s->an_start_s = at;
    s->an_end_s = D;
    double rest = D - at;
    int64_t t0 = g->start_ms + (int64_t)at * 1000, tend = g->start_ms + (int64_t)D * 1000;
    truth_t *tr = NULL;
    switch (k) {
    case AN_THERMAL:
      start_lead(g, s, at - range(g, 1, 3) * 3600);
      s->ramp_s = floor(fmin(600, 0.5 * rest));
      s->peak_c = range(g, 650, 950);
      tr = truth_add(g, "thermal_runaway", "critical", sti, so + 1,
                     t0 + (int64_t)s->ramp_s * 1000, tend);
      if (tr)
        snprintf(tr->desc, sizeof tr->desc,
                 "5 C/min ramp for %.0f s then > 1 C/s jump to %.0f C, smoke=1", s->ramp_s,
                 s->peak_c);
      break;
    case AN_OVERLOAD:
      s->an_end_s = at + fmin(90, rest - 5);
      tr = truth_add(g, "overload", "critical", sti, so + 1, t0 + 10000,
                     g->start_ms + (int64_t)(s->an_end_s * 1000));
      if (tr)
        snprintf(tr->desc, sizeof tr->desc,
                 "%.0f W > rated %.0f W for %.0f s, then stop=over_power", OVERLOAD_W, RATED_W,
                 s->an_end_s - at);
      break;
    case AN_TAMPER:
      s->an_end_s = at + fmin(900, rest - g->interval_s);
      tr = truth_add(g, "overload", "warning", sti, so + 1, t0 + TAMPER_MIN_S * 1000,
                     g->start_ms + (int64_t)(s->an_end_s * 1000));
      if (tr)
        snprintf(tr->desc, sizeof tr->desc, "tampered charger: %.0f W for %.0f s", TAMPER_W,
                 s->an_end_s - at);
      break;
    case AN_FORBIDDEN:
      start_lith(g, s, at);
      g->st[sti].forbid_night = true;
      tr = truth_add(g, "overnight_charging", "warning", sti, so + 1, t0, tend);
      if (tr) snprintf(tr->desc, sizeof tr->desc, "charging at a forbidden socket");
      break;
    case AN_SILENT: {
      double silence = fmax(OFFLINE_MIN_S, 3 * g->interval_s);
      tr = truth_add(g, "offline", "warning", sti, so + 1, t0 + (int64_t)silence * 1000, tend);
      if (tr)
        snprintf(tr->desc, sizeof tr->desc,
                 "socket stops reporting (receive time: fires only at replay speed 1)");
      break;
    }
    default:
      break;
    }
  }
  free(idx);
  return 0;
}

/* Does socket s report at second sec? Abnormal sockets report every second
 * (docs/ARCHITECTURE.md section 1) while thermal runaway or overload lasts. */
static bool reports(const gen_t *g, const sock_t *s, int phase_s, int sec) {
  if (s->an != AN_NONE && sec >= s->an_start_s) {
    if (s->an == AN_SILENT) return false;
    if ((s->an == AN_THERMAL || s->an == AN_OVERLOAD) && sec <= s->an_end_s + 1) return true;
  }
  return sec % g->interval_s == phase_s;
}

typedef struct ev {
  int64_t ts;
  size_t off;
  uint16_t tlen;
  uint32_t plen;
  uint32_t seq;
} ev_t;

typedef struct evbuf {
  ev_t *ev;
  size_t nev, capev;
  char *b;
  size_t len, cap;
} evbuf_t;

static int cmp_ev(const void *a, const void *b) {
  const ev_t *x = a, *y = b;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int eb_reserve(evbuf_t *e, size_t more) {
  if (e->len + more > e->cap) {
    size_t cap = e->cap ? e->cap : 65536;
    while (cap < e->len + more) cap *= 2;
    char *b = realloc(e->b, cap);
    if (!b) return -ENOMEM;
    e->b = b;
    e->cap = cap;
  }
  if (e->nev == e->capev) {
    size_t cap = e->capev ? e->capev * 2 : 1024;
    ev_t *v = realloc(e->ev, cap * sizeof *v);
    if (!v) return -ENOMEM;
    e->ev = v;
    e->capev = cap;
  }
  return 0;
}

#define RD_MAX 320

static int emit_second(gen_t *g, evbuf_t *e, int sec) {
  e->nev = e->len = 0;
  for (int i = 0; i < g->nst; i++) {
    station_t *st = &g->st[i];
    bool station_tick = g->batched && sec % g->interval_s == st->phase_s;
    size_t arr_off = 0;
    int arr_n = 0;
    for (int k = 0; k < g->nsock; k++) {
      sock_t *s = &g->sk[i * g->nsock + k];
      int phase_s = g->batched ? st->phase_s : s->phase_s;
      int phase_ms = g->batched ? st->phase_ms : s->phase_ms;
      if (!reports(g, s, phase_s, sec)) continue;
      double t = sec + phase_ms / 1000.0;
      if (eb_reserve(e, 64 + RD_MAX)) return -ENOMEM;
      if (station_tick) { /* part of the station's array */
        if (arr_n == 0) {
          arr_off = e->len;
          e->len += (size_t)sprintf(e->b + e->len, "cw/%s/telemetry", st->code);
          e->ev[e->nev] = (ev_t){g->start_ms + (int64_t)llround(t * 1000), arr_off,
                                 (uint16_t)(e->len - arr_off), 0, (uint32_t)e->nev};
          e->nev++;
          e->b[e->len++] = '[';
        } else {
          e->b[e->len++] = ',';
        }
        e->len += (size_t)reading(g, i, k, t, e->b + e->len, RD_MAX, true);
        arr_n++;
        continue;
      }
      size_t off = e->len;
      if (g->batched) {
        e->len += (size_t)sprintf(e->b + e->len, "cw/%s/telemetry", st->code);
        size_t tl = e->len - off;
        e->b[e->len++] = '[';
        e->len += (size_t)reading(g, i, k, t, e->b + e->len, RD_MAX, true);
        e->b[e->len++] = ']';
        e->ev[e->nev] = (ev_t){g->start_ms + (int64_t)llround(t * 1000), off, (uint16_t)tl,
                               (uint32_t)(e->len - off - tl), (uint32_t)e->nev};
      } else {
        e->len += (size_t)sprintf(e->b + e->len, "cw/%s/%d/telemetry", st->code, k + 1);
        size_t tl = e->len - off;
        e->len += (size_t)reading(g, i, k, t, e->b + e->len, RD_MAX, false);
        e->ev[e->nev] = (ev_t){g->start_ms + (int64_t)llround(t * 1000), off, (uint16_t)tl,
                               (uint32_t)(e->len - off - tl), (uint32_t)e->nev};
      }
      e->nev++;
    }
    if (arr_n > 0) {
      if (eb_reserve(e, 2)) return -ENOMEM;
      e->b[e->len++] = ']';
      /* The array event was added before its elements: find it by offset. */
      for (size_t j = e->nev; j-- > 0;)
        if (e->ev[j].off == arr_off) {
          e->ev[j].plen = (uint32_t)(e->len - arr_off - e->ev[j].tlen);
          break;
        }
    }
  }
  qsort(e->ev, e->nev, sizeof *e->ev, cmp_ev);
  for (size_t j = 0; j < e->nev; j++) {
    const ev_t *v = &e->ev[j];
    if (cw_cap_write(g->out, (uint64_t)v->ts * 1000, e->b + v->off, v->tlen,
                     e->b + v->off + v->tlen, v->plen))
      return -EIO;
    g->msgs++;
  }
  return 0;
}

static void init_city(gen_t *g) {
  for (int i = 0; i < g->nst; i++) {
    station_t *st = &g->st[i];
    snprintf(st->code, sizeof st->code, "CX-%04d", i + 1);
    st->v0 = range(g, 222, 233);
    st->amb0 = range(g, 16, 26);
    st->amb_phase = range(g, 0, 2 * M_PI);
    st->phase_s = (int)(rnd(g) % (uint64_t)g->interval_s);
    st->phase_ms = (int)(rnd(g) % 1000);
    for (int k = 0; k < g->nsock; k++) {
      sock_t *s = &g->sk[i * g->nsock + k];
      s->phase_s = (int)(rnd(g) % (uint64_t)g->interval_s);
      s->phase_ms = (int)(rnd(g) % 1000);
      s->wh = range(g, 0, 50000);
      s->night_first_s = -1;
      double p = unif(g);
      if (p < 0.35) {
        go_idle(g, s, -range(g, 0, 200) * 60);
      } else if (p < 0.75) {
        start_lead(g, s, -range(g, 0, 8) * 3600);
      } else {
        start_lith(g, s, 0);
        s->sess_start_s = -range(g, 0, s->dur_s);
        s->full_until_s = s->sess_start_s + s->dur_s + range(g, 20, 90) * 60;
      }
      s->heat_c = HEAT_C_PER_W * (s->prof == PROF_LEAD ? s->p0_w : s->prof == PROF_LITH ? 72 : 0);
      s->last_s = -1;
    }
  }
}

static int cmp_truth(const void *a, const void *b) {
  const truth_t *x = a, *y = b;
  if (x->start_ms != y->start_ms) return x->start_ms < y->start_ms ? -1 : 1;
  return x->station != y->station ? x->station - y->station : x->socket - y->socket;
}

static int write_truth(gen_t *g, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -errno;
  qsort(g->truth, g->ntruth, sizeof *g->truth, cmp_truth);
  fprintf(f, "kind,severity,station,socket,start_ts_ms,end_ts_ms,description\n");
  for (size_t i = 0; i < g->ntruth; i++) {
    const truth_t *t = &g->truth[i];
    fprintf(f, "%s,%s,%s,%d,%lld,%lld,\"%s\"\n", t->kind, t->severity, g->st[t->station].code,
            t->socket, (long long)t->start_ms, (long long)t->end_ms, t->desc);
  }
  return fclose(f) ? -errno : 0;
}

/* Policy rows for the scenario: stations that forbid overnight charging and
 * their forbidden sockets (the sockets given the "forbidden" anomaly). */
static int write_sql(gen_t *g, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -errno;
  fprintf(f, "-- Station and socket policies for a capture written by bench/gen.\n"
             "-- Apply with psql after the daemon has created the schema, then SIGHUP it.\n"
             "BEGIN;\n");
  for (int i = 0; i < g->nst; i++) {
    if (!g->st[i].forbid_night) continue;
    fprintf(f, "INSERT INTO stations (code, overnight_allowed) VALUES ('%s', false)\n"
               "  ON CONFLICT (code) DO UPDATE SET overnight_allowed = EXCLUDED.overnight_allowed;\n",
            g->st[i].code);
    for (int k = 0; k < g->nsock; k++)
      if (g->sk[i * g->nsock + k].an == AN_FORBIDDEN)
        fprintf(f, "INSERT INTO sockets (station, socket, forbidden) VALUES ('%s', %d, true)\n"
                   "  ON CONFLICT (station, socket) DO UPDATE SET forbidden = EXCLUDED.forbidden;\n",
                g->st[i].code, k + 1);
  }
  fprintf(f, "COMMIT;\n");
  return fclose(f) ? -errno : 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: gen -o FILE [-s stations] [-k sockets_per_station] [-i interval_s]\n"
          "           [-d duration_s] [--seed N] [--anomaly-rate R] [--batched]\n"
          "           [--truth FILE] [--sql FILE] [--start-ms T]\n"
          "Writes a synthetic city capture (docs/CAPTURE.md). Defaults: -s 100 -k 10 -i 10\n"
          "-d 600 --seed 1 --anomaly-rate 0.01 --start-ms 1764374400000 (2025-11-29 00:00Z).\n"
          "--anomaly-rate: fraction of sockets given an anomaly (thermal runaway, overload,\n"
          "forbidden-socket charging, tampered charger, silent socket, in turn).\n");
}

int main(int argc, char **argv) {
  gen_t g = {.nst = 100, .nsock = 10, .interval_s = 10, .duration_s = 600,
             .anomaly_rate = 0.01, .start_ms = 1764374400000LL};
  const char *out = NULL, *truth = NULL, *sql = NULL;
  uint64_t seed = 1;
  evbuf_t e = {0};
  int rc = 1;
  static const struct option opts[] = {
      {"seed", required_argument, 0, 'S'}, {"anomaly-rate", required_argument, 0, 'R'},
      {"batched", no_argument, 0, 'B'},    {"truth", required_argument, 0, 'T'},
      {"sql", required_argument, 0, 'Q'},  {"start-ms", required_argument, 0, 'M'},
      {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "o:s:k:i:d:h", opts, NULL)) != -1) {
    switch (c) {
    case 'o': out = optarg; break;
    case 's': g.nst = atoi(optarg); break;
    case 'k': g.nsock = atoi(optarg); break;
    case 'i': g.interval_s = atoi(optarg); break;
    case 'd': g.duration_s = atoi(optarg); break;
    case 'S': seed = strtoull(optarg, NULL, 0); break;
    case 'R': g.anomaly_rate = atof(optarg); break;
    case 'B': g.batched = true; break;
    case 'T': truth = optarg; break;
    case 'Q': sql = optarg; break;
    case 'M': g.start_ms = strtoll(optarg, NULL, 0); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!out || g.nst < 1 || g.nst > 999999 || g.nsock < 1 || g.nsock > 255 || g.interval_s < 1 ||
      g.duration_s < 1 || g.anomaly_rate < 0 || g.anomaly_rate > 1 || optind != argc) {
    usage(stderr);
    return 2;
  }
  g.rng = seed;
  g.st = calloc((size_t)g.nst, sizeof *g.st);
  g.sk = calloc((size_t)g.nst * g.nsock, sizeof *g.sk);
  if (!g.st || !g.sk) goto fail;
  init_city(&g);
  if (plan_anomalies(&g)) goto fail;
  g.out = fopen(out, "wb");
  if (!g.out) {
    perror(out);
    goto fail;
  }
  if (cw_cap_write_header(g.out)) goto io;
  for (int sec = 0; sec < g.duration_s; sec++)
    if (emit_second(&g, &e, sec)) goto io;
  /* Close night-charging runs still open at the end. */
  for (int i = 0; i < g.nst; i++)
    for (int k = 0; k < g.nsock; k++) {
      sock_t *s = &g.sk[i * g.nsock + k];
      if (s->night_first_s >= 0 && s->night_last_s - s->night_first_s >= NIGHT_MIN_S) {
        truth_t *tr = truth_add(&g, "overnight_charging", "warning", i, k + 1,
                                g.start_ms + (int64_t)((s->night_first_s + NIGHT_MIN_S) * 1000),
                                g.start_ms + (int64_t)(s->night_last_s * 1000));
        if (tr) snprintf(tr->desc, sizeof tr->desc, "charging in the night window >= 5 min");
      }
    }
  if (fclose(g.out)) {
    g.out = NULL;
    goto io;
  }
  g.out = NULL;
  if (truth && write_truth(&g, truth)) {
    perror(truth);
    goto fail;
  }
  if (sql && write_sql(&g, sql)) {
    perror(sql);
    goto fail;
  }
  {
    int count[AN__N] = {0};
    for (int i = 0; i < g.nst * g.nsock; i++) count[g.sk[i].an]++;
    fprintf(stderr, "gen: %s: %llu msgs, %llu readings, %d stations x %d sockets, %d s;"
                    " anomalies:", out, (unsigned long long)g.msgs,
            (unsigned long long)g.readings, g.nst, g.nsock, g.duration_s);
    for (int k = 1; k < AN__N; k++) fprintf(stderr, " %s=%d", an_name[k], count[k]);
    fprintf(stderr, "; truth rows %zu\n", g.ntruth);
  }
  rc = 0;
  goto done;
io:
  fprintf(stderr, "gen: write error on %s\n", out);
fail:
  if (rc && !g.out) fprintf(stderr, "gen: failed\n");
done:
  if (g.out) fclose(g.out);
  free(e.ev);
  free(e.b);
  free(g.truth);
  free(g.sk);
  free(g.st);
  return rc;
}
