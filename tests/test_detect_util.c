/* test_detect_util.c - recorder, trace generator and event matcher for the
 * detection-engine tests (see test_detect_util.h). */
#include "test_detect_util.h"
#include "text.h"

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
  static const char *n[] = {"thermal", "overload", "overnight", "offline", "ingest"};
  return (unsigned)k < 5 ? n[k] : "?";
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

/* ------------------------------------------------ real traces, scenarios */

const char *cw_test_data_dir(void);

int det_fsri_load(det_fsri_row_t **out) {
  char path[512], line[2048];
  snprintf(path, sizeof(path), "%s/fsri-lib-ess-demo-2020/Cell_Level_Experiment.csv",
           cw_test_data_dir());
  FILE *fp = fopen(path, "r");
  if (!fp) return -1;
  int n = 0, cap = 8192;
  det_fsri_row_t *rows = malloc((size_t)cap * sizeof(*rows));
  if (!rows) {
    fclose(fp);
    return -1;
  }
  bool header = true;
  while (fgets(line, sizeof(line), fp) && n < cap) {
    line[strcspn(line, "\r\n")] = '\0';
    if (header) { /* the columns relied on are where they are expected */
      header = false;
      if (strncmp(line, "Time (s),Thermal Runaway,Flaming,THC (ppm)", 42) != 0 ||
          !strstr(line, "Cell 1 Temperature (C),Cell 2") ||
          !strstr(line, "Cell 9 Temperature (C)")) {
        n = -1;
        break;
      }
      continue;
    }
    char *f[20];
    if (cw_csv_split(line, f, 20) < 18 || f[0][0] == '\0') continue; /* trailing rows: no Time */
    rows[n].time_s = atoi(f[0]);
    rows[n].tr = strcmp(f[1], "TRUE") == 0;
    rows[n].thc = atof(f[3]);
    for (int c = 0; c < 9; c++) rows[n].cell[c] = f[9 + c][0] ? atof(f[9 + c]) : NAN;
    n++;
  }
  fclose(fp);
  if (n <= 0) {
    free(rows);
    return -1;
  }
  *out = rows;
  return n;
}

int det_fsri_onset(const det_fsri_row_t *rows, int n, int cell) {
  for (int i = 1; i < n; i++) {
    double a = rows[i - 1].cell[cell - 1], b = rows[i].cell[cell - 1];
    if (b > 80 && b - a >= 1.0) return rows[i].time_s;
  }
  return -1;
}

static const int64_t SCEN_DAY_MS = DET_MIDNIGHT_MS; /* a Monday in June, local midnight */

/* FSRI replay: sockets 1..9 of one station carry the surface thermocouple
 * of cell 1..9; the heated cell 5's socket also reports the exhaust THC as
 * smoke. cells: bitmask of cells fed (bit c-1). */
static int fsri_feed(det_rec_t *r, int step_s, det_scen_out_t *out, unsigned cells) {
  det_fsri_row_t *rows = NULL;
  int n = det_fsri_load(&rows);
  if (n < 0) return -1;
  out->start_ms = SCEN_DAY_MS + 10 * DET_HOUR_MS;
  for (int i = 0; i < n; i++) {
    if (rows[i].time_s % step_s) continue;
    for (int c = 1; c <= 9; c++) {
      if (!(cells & (1u << (c - 1))) || isnan(rows[i].cell[c - 1])) continue;
      cw_reading_t rd = det_reading("UL-FSRI", (uint8_t)c, out->start_ms + rows[i].time_s * 1000LL);
      rd.have = CW_HAVE_T;
      rd.t = (float)rows[i].cell[c - 1];
      if (c == 5) {
        rd.have |= CW_HAVE_SMOKE;
        rd.smoke = rows[i].thc > 10.0;
      }
      det_feed(r, &rd);
    }
  }
  int ncells = 0;
  for (int c = 1; c <= 9; c++) {
    if (!(cells & (1u << (c - 1)))) continue;
    ncells++;
    int on = det_fsri_onset(rows, n, c);
    if (on >= 0 && out->nlabel < DET_MAX_LABELS) {
      out->label_socket[out->nlabel] = (uint8_t)c;
      out->label_onset_ms[out->nlabel++] = out->start_ms + on * 1000LL;
    }
  }
  out->socket_hours = ncells * rows[n - 1].time_s / 3600.0;
  free(rows);
  return 0;
}

static int scen_fsri_cell5(det_rec_t *r, int step_s, det_scen_out_t *out) {
  return fsri_feed(r, step_s, out, 1u << 4);
}
static int scen_fsri_station(det_rec_t *r, int step_s, det_scen_out_t *out) {
  return fsri_feed(r, step_s, out, 0x1ff);
}

/* A real metering-plug power log (CSV: ms since the log started, W) on one
 * socket from start_h local; step_s below the plug's own cadence (about
 * 20 s) replays it as recorded. */
static int plug_feed(det_rec_t *r, int step_s, det_scen_out_t *out, const char *file,
                     const char *station, int start_h) {
  char path[512], line[256];
  snprintf(path, sizeof(path), "%s/smartcharge-monitor-fixtures/%s", cw_test_data_dir(), file);
  FILE *fp = fopen(path, "r");
  if (!fp) return -1;
  out->start_ms = SCEN_DAY_MS + start_h * DET_HOUR_MS;
  int64_t last = -1, ts = out->start_ms;
  while (fgets(line, sizeof(line), fp)) {
    char *f[3];
    if (cw_csv_split(line, f, 3) < 2 || !strchr("0123456789", f[0][0])) continue; /* header */
    ts = out->start_ms + llround(atof(f[0]));
    if (last >= 0 && ts - last < (int64_t)step_s * 1000 - 500) continue;
    last = ts;
    cw_reading_t rd = det_reading(station, 1, ts);
    rd.have = CW_HAVE_W;
    rd.w = (float)atof(f[1]);
    det_feed(r, &rd);
    cw_engine_sweep(r->e, ts);
  }
  fclose(fp);
  out->socket_hours = (double)(ts - out->start_ms) / DET_HOUR_MS;
  return 0;
}

/* Ninebot e-scooter charge on a Meross plug, from 14:00. */
static int scen_ninebot(det_rec_t *r, int step_s, det_scen_out_t *out) {
  return plug_feed(r, step_s, out, "data-ninebot.csv", "NB-0001", 14);
}
/* A power bank (noisy 5-13 W) and a watch charger (under 3 W) on the same
 * kind of plug, from 23:00: small loads through the night window. */
static int scen_powerbank(det_rec_t *r, int step_s, det_scen_out_t *out) {
  return plug_feed(r, step_s, out, "data-noisy-powerbank.csv", "PB-0001", 23);
}
static int scen_watch(det_rec_t *r, int step_s, det_scen_out_t *out) {
  return plug_feed(r, step_s, out, "data-apple-watch.csv", "AW-0001", 23);
}

/* Feeds w(t) (and optionally t) every step_s for dur_s with a sweep per
 * reading. */
typedef struct gen_pt {
  double at_s, w, t;
} gen_pt_t;

static double interp(const gen_pt_t *p, int n, double x, int field) {
  if (x <= p[0].at_s) return field ? p[0].t : p[0].w;
  for (int i = 1; i < n; i++)
    if (x <= p[i].at_s) {
      double f = (x - p[i - 1].at_s) / (p[i].at_s - p[i - 1].at_s);
      double a = field ? p[i - 1].t : p[i - 1].w, b = field ? p[i].t : p[i].w;
      return a + (b - a) * f;
    }
  return field ? p[n - 1].t : p[n - 1].w;
}

static void gen_feed(det_rec_t *r, const char *st, uint8_t so, int64_t start, const gen_pt_t *p,
                     int n, int step_s, uint16_t have) {
  double end = p[n - 1].at_s;
  for (double x = 0; x <= end; x += step_s) {
    cw_reading_t rd = det_reading(st, so, start + llround(x * 1000));
    rd.have = have;
    rd.w = (float)interp(p, n, x, 0);
    rd.t = (float)interp(p, n, x, 1);
    if (have & CW_HAVE_A) rd.a = rd.w / 48.0f;
    det_feed(r, &rd);
    cw_engine_sweep(r->e, rd.ts_ms);
  }
}

/* Lead-acid e-bike charger from 22:00 local: 66 W rising to 84 W over
 * 7.4 h (CC phase, pack voltage rising), taper to 5 W by 7.6 h, then off.
 * Shape of the field report; 0.57 kWh delivered. */
static int scen_slow_overnight(det_rec_t *r, int step_s, det_scen_out_t *out) {
  static const gen_pt_t p[] = {{0, 66, 28},         {7.4 * 3600, 84, 31}, {7.6 * 3600, 5, 30},
                               {7.61 * 3600, 0, 29}, {8.5 * 3600, 0, 27}};
  out->start_ms = SCEN_DAY_MS - 2 * DET_HOUR_MS; /* 22:00 local the evening before */
  gen_feed(r, "EB-SLOW", 1, out->start_ms, p, 5, step_s, CW_HAVE_W | CW_HAVE_T);
  out->socket_hours = 8.5;
  return 0;
}

/* A report-on-change plug (Zigbee-like): it speaks only when the draw
 * changes by more than its reporting threshold, every 3-13 min while an
 * e-bike charges at 70-84 W, for 4 h; step_s does not apply (the plug's
 * own cadence). Sweeps every second on receive time. */
static int scen_report_on_change(det_rec_t *r, int step_s, det_scen_out_t *out) {
  static const int gaps_s[] = {200, 540, 180, 780, 320, 660, 240, 720, 400, 600, 190, 770, 360};
  (void)step_s;
  out->start_ms = SCEN_DAY_MS + 9 * DET_HOUR_MS;
  int64_t ts = out->start_ms, end = out->start_ms + 4 * DET_HOUR_MS, next = ts;
  int k = 0;
  double w = 70;
  for (int64_t now = ts; now <= end; now += 1000) {
    if (now >= next) {
      cw_reading_t rd = det_reading("ZB-0001", 1, now);
      rd.have = CW_HAVE_W;
      rd.w = (float)w;
      cw_engine_process(r->e, &rd, now);
      w = w >= 84 ? 70 : w + 2.5;
      next = now + gaps_s[k++ % (int)(sizeof(gaps_s) / sizeof(gaps_s[0]))] * 1000LL;
    }
    cw_engine_sweep(r->e, now);
  }
  out->socket_hours = 4;
  return 0;
}

/* A battery-temperature probe steps 25.5 -> 33.4 C in 50 s with no current
 * (charging has not begun) and stays there for 30 min. */
static int scen_probe_step(det_rec_t *r, int step_s, det_scen_out_t *out) {
  static const gen_pt_t p[] = {{0, 0, 25.5}, {600, 0, 25.5}, {650, 0, 33.4}, {2400, 0, 33.4}};
  out->start_ms = SCEN_DAY_MS + 19 * DET_HOUR_MS;
  gen_feed(r, "PRB-001", 1, out->start_ms, p, 4, step_s, CW_HAVE_W | CW_HAVE_A | CW_HAVE_T);
  out->socket_hours = 2400 / 3600.0;
  return 0;
}

/* A legitimate 470 W fast charger for 2 h (daytime), taper, stop. */
static int scen_fast_charger(det_rec_t *r, int step_s, det_scen_out_t *out) {
  static const gen_pt_t p[] = {{0, 470, 30}, {2 * 3600, 470, 36}, {2.3 * 3600, 40, 33},
                               {2.31 * 3600, 0, 32}, {2.5 * 3600, 0, 30}};
  out->start_ms = SCEN_DAY_MS + 13 * DET_HOUR_MS;
  gen_feed(r, "FC-0001", 1, out->start_ms, p, 5, step_s, CW_HAVE_W | CW_HAVE_T);
  out->socket_hours = 2.5;
  return 0;
}

/* An iron's thermostat on a 1000 W socket: 1500 W for 40 s, off for 80 s,
 * over 6 min (three heating cycles). It is an overload (one incident). */
static int scen_cycling_iron(det_rec_t *r, int step_s, det_scen_out_t *out) {
  out->start_ms = SCEN_DAY_MS + 20 * DET_HOUR_MS;
  out->expect[CW_KIND_OVERLOAD] = 1; /* a real overload of the socket: one incident */
  for (int x = 0; x <= 600; x += step_s) {
    cw_reading_t rd = det_reading("IRN-001", 1, out->start_ms + x * 1000LL);
    rd.have = CW_HAVE_W;
    rd.w = (x < 360 && x % 120 < 40) ? 1500.0f : 1.0f;
    det_feed(r, &rd);
    cw_engine_sweep(r->e, rd.ts_ms);
  }
  out->socket_hours = 600 / 3600.0;
  return 0;
}

const det_scen_t det_scens[] = {
    {"fsri_cell5", "real: UL FSRI cell test, heated cell 5 + THC as smoke (MIT)", scen_fsri_cell5},
    {"fsri_station", "real: UL FSRI cell test, cells 1-9 on sockets 1-9 of one station (MIT)",
     scen_fsri_station},
    {"ninebot_charge", "real: Ninebot e-scooter charge on a Meross plug (MIT)", scen_ninebot},
    {"powerbank_charge", "real: noisy power-bank charge on a Meross plug, 23:00 (MIT)",
     scen_powerbank},
    {"watch_charge", "real: watch charger on a Meross plug, 23:00 (MIT)", scen_watch},
    {"slow_overnight", "generated: lead-acid e-bike charge 7.6 h from 22:00", scen_slow_overnight},
    {"report_on_change", "generated: report-on-change plug, gaps 3-13 min",
     scen_report_on_change},
    {"probe_step", "generated: probe step 25.5->33.4 C in 50 s at zero current", scen_probe_step},
    {"fast_charger", "generated: legitimate 470 W charger, 2 h", scen_fast_charger},
    {"cycling_iron", "generated: 1.5 kW iron, thermostat 40 s on / 80 s off", scen_cycling_iron},
};
const int det_nscens = (int)(sizeof(det_scens) / sizeof(det_scens[0]));

const det_scen_t *det_scen_find(const char *name) {
  for (int i = 0; i < det_nscens; i++)
    if (strcmp(det_scens[i].name, name) == 0) return &det_scens[i];
  return NULL;
}
