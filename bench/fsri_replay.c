/* fsri_replay.c - feeds the UL FSRI 18650 thermal-runaway test (Cell 5
 * temperature, THC > 10 ppm as smoke) through the detection engine with the
 * default thresholds, for bench/plot.sh: the curve and the moment each alert
 * event fired, in seconds of the experiment.
 *   fsri_replay [-f Cell_Level_Experiment.csv] [-s step_s] [-o curve.dat]
 * Prints one line per alert event: `event T_S KIND SEVERITY EVENT VALUE UNIT`,
 * then `fsri: tr_flag_s=N` (first row the experimenters flagged runaway). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "text.h"

/* The replay starts at 10:00 UTC on an arbitrary day: the overnight rules
 * (UTC+8 night) cannot fire, so only thermal events appear. */
#define START_MS 1764410400000LL

static int64_t next_id_val;

static int64_t next_id(void *ctx) {
  (void)ctx;
  return ++next_id_val;
}

static void on_alert(void *ctx, const cw_alert_event_t *ev) {
  (void)ctx;
  printf("event %.0f %s %s %s %.2f %s\n", (double)(ev->ts_ms - START_MS) / 1000.0,
         cw_kind_name(ev->kind), cw_severity_name(ev->severity), cw_event_name(ev->event),
         ev->value, ev->unit);
}

int main(int argc, char **argv) {
  const char *path = "tests/data/fsri-lib-ess-demo-2020/Cell_Level_Experiment.csv";
  const char *curve = NULL;
  int step = 1, opt, rc = 1, tr_flag = -1;
  FILE *in = NULL, *out = NULL;
  cw_engine_t *e = NULL;
  while ((opt = getopt(argc, argv, "f:s:o:h")) != -1) {
    switch (opt) {
    case 'f': path = optarg; break;
    case 's': step = atoi(optarg); break;
    case 'o': curve = optarg; break;
    default:
      fprintf(stderr, "usage: fsri_replay [-f CSV] [-s step_s] [-o curve.dat]\n");
      return 2;
    }
  }
  if (step < 1) return 2;
  in = fopen(path, "r");
  if (!in) {
    perror(path);
    goto out;
  }
  if (curve && !(out = fopen(curve, "w"))) {
    perror(curve);
    goto out;
  }
  cw_detect_cfg_t cfg;
  cw_detect_cfg_defaults(&cfg);
  e = cw_engine_new(&cfg, on_alert, next_id, NULL);
  if (!e) goto out;
  char line[4096];
  int col_t5 = -1, col_thc = -1, col_tr = -1;
  if (!fgets(line, sizeof line, in)) goto out;
  line[strcspn(line, "\r\n")] = '\0';
  char *f[32];
  int nf = cw_csv_split(line, f, 32);
  for (int i = 0; i < nf; i++) {
    if (!strcmp(f[i], "Cell 5 Temperature (C)")) col_t5 = i;
    if (!strcmp(f[i], "THC (ppm)")) col_thc = i;
    if (!strcmp(f[i], "Thermal Runaway")) col_tr = i;
  }
  if (col_t5 < 0 || col_thc < 0 || col_tr < 0) {
    fprintf(stderr, "fsri_replay: %s: expected columns not found\n", path);
    goto out;
  }
  if (out) fprintf(out, "# time_s cell5_t_c thc_ppm\n");
  while (fgets(line, sizeof line, in)) {
    line[strcspn(line, "\r\n")] = '\0';
    nf = cw_csv_split(line, f, 32);
    if (nf <= col_t5 || f[0][0] == '\0') continue; /* trailing rows without a time */
    int ts = atoi(f[0]);
    if (tr_flag < 0 && !strcmp(f[col_tr], "TRUE")) tr_flag = ts;
    if (ts % step) continue;
    double t5 = atof(f[col_t5]), thc = atof(f[col_thc]);
    if (out) fprintf(out, "%d %.3f %.2f\n", ts, t5, thc);
    cw_reading_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.station, sizeof r.station, "UL-FSRI");
    r.socket = 5;
    r.ts_ms = START_MS + (int64_t)ts * 1000;
    r.have = CW_HAVE_T | CW_HAVE_SMOKE;
    r.t = (float)t5;
    r.smoke = thc > 10.0; /* venting electrolyte vapour, as in tests/test_detect_trace.c */
    cw_engine_process(e, &r, r.ts_ms);
  }
  printf("fsri: tr_flag_s=%d step_s=%d\n", tr_flag, step);
  rc = 0;
out:
  if (e) cw_engine_free(e);
  if (out) fclose(out);
  if (in) fclose(in);
  return rc;
}
