/* test_detect_trace.c - detection engine on real recorded data (tests/data,
 * see its README.md): the UL FSRI 18650 cell thermal-runaway test (DOI
 * 10.5281/zenodo.7003380) replayed at 1, 5, 15 and 30 s sampling, and a real
 * Ninebot charger power log that must raise nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_detect_util.h"
#include "text.h"

#define FSRI_TR_FLAG_S 1701 /* first "Thermal Runaway" TRUE row in the file */

/* Replays Cell 5 (t) and THC > 10 ppm as smoke=1 every step s. Fills the
 * warning and first-critical times (-1 if none). */
static det_rec_t *fsri_replay(const det_fsri_row_t *rows, int n, int step,
                              const cw_detect_cfg_t *cfg) {
  det_rec_t *r = det_new(cfg);
  int64_t start = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS;
  for (int i = 0; i < n; i++) {
    if (rows[i].time_s % step) continue;
    cw_reading_t rd = det_reading("UL-FSRI", 5, start + (int64_t)rows[i].time_s * 1000);
    rd.have = CW_HAVE_T | CW_HAVE_SMOKE;
    rd.t = (float)rows[i].cell[4];
    rd.smoke = rows[i].thc > 10.0; /* gas: venting electrolyte vapour */
    det_feed(r, &rd);
  }
  return r;
}

/* Default thresholds: a rate warning minutes ahead of the runaway flag,
 * then critical when the cell passes 90 C (~941 s), and nothing else: the
 * alert stays critical and open through venting (1700 s) and runaway. */
static void fsri_case(int step) {
  det_fsri_row_t *rows = NULL;
  int n = det_fsri_load(&rows);
  CHECK(n > 5900);
  cw_detect_cfg_t cfg;
  cw_detect_cfg_defaults(&cfg);
  det_rec_t *r = fsri_replay(rows, n, step, &cfg);
  int64_t start = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS;
  /* the warning from the 2 C/min rule lands between 200 and 330 s at every
   * sampling interval (the heater ramp starts at ~200 s); 90 C is first
   * reached at 941 s */
  det_exp_t exp[] = {
      {CW_KIND_THERMAL_RUNAWAY, CW_SEV_WARNING, CW_EV_RAISED, 200, 130, 5},
      {CW_KIND_THERMAL_RUNAWAY, CW_SEV_CRITICAL, CW_EV_ESCALATED, 941, step - 1, 5},
  };
  int ok = det_match(r, start, exp, 2);
  if (ok)
    printf("    fsri %2d s sampling: warning at %lld s (%s, lead %lld s before the TR flag), "
           "critical at %lld s (lead %lld s)\n",
           step, (long long)(r->ev[0].ts_ms - start) / 1000, r->ev[0].unit,
           FSRI_TR_FLAG_S - (long long)(r->ev[0].ts_ms - start) / 1000,
           (long long)(r->ev[1].ts_ms - start) / 1000,
           FSRI_TR_FLAG_S - (long long)(r->ev[1].ts_ms - start) / 1000);
  int unit_ok = ok && strcmp(r->ev[0].unit, "C/min") == 0 && strcmp(r->ev[1].unit, "C") == 0;
  size_t open = cw_engine_open_alerts(r->e);
  det_free(r);
  free(rows);
  CHECK(ok);
  CHECK(unit_ok);
  CHECK_EQ(open, 1);
}

CW_TEST(detect_fsri_cell_1s) { fsri_case(1); }
CW_TEST(detect_fsri_cell_5s) { fsri_case(5); }
CW_TEST(detect_fsri_cell_15s) { fsri_case(15); }
CW_TEST(detect_fsri_cell_30s) { fsri_case(30); }

/* With the 90 C rule out of the way (a site that tunes it up), venting gas
 * alone escalates at 1700 s, a second before the runaway flag. */
CW_TEST(detect_fsri_gas_escalates) {
  static const int steps[] = {1, 5, 15, 30};
  det_fsri_row_t *rows = NULL;
  int n = det_fsri_load(&rows);
  CHECK(n > 5900);
  for (int i = 0; i < 4; i++) {
    cw_detect_cfg_t cfg;
    cw_detect_cfg_defaults(&cfg);
    CHECK_EQ(cw_detect_cfg_set(&cfg, "thermal_crit_c", "1200"), 0);
    det_rec_t *r = fsri_replay(rows, n, steps[i], &cfg);
    int64_t start = DET_MIDNIGHT_MS + 10 * DET_HOUR_MS;
    /* first sample at or after 1700 s on the sampling grid */
    double t_gas = ((1700 + steps[i] - 1) / steps[i]) * steps[i];
    det_exp_t exp[] = {
        {CW_KIND_THERMAL_RUNAWAY, CW_SEV_WARNING, CW_EV_RAISED, 200, 130, 5},
        {CW_KIND_THERMAL_RUNAWAY, CW_SEV_CRITICAL, CW_EV_ESCALATED, t_gas, 0, 5},
    };
    int ok = det_match(r, start, exp, 2);
    int msg_ok = ok && strstr(r->ev[1].message, "smoke") != NULL;
    det_free(r);
    if (!ok) fprintf(stderr, "    at %d s sampling\n", steps[i]);
    if (!ok || !msg_ok) free(rows);
    CHECK(ok);
    CHECK(msg_ok);
  }
  free(rows);
}

/* A real e-scooter charger (71-77 W, 20 s polling, 102 min) in daytime at a
 * default station: no alert of any kind. */
CW_TEST(detect_ninebot_charge_silent) {
  char path[512], line[256];
  snprintf(path, sizeof(path), "%s/smartcharge-monitor-fixtures/data-ninebot.csv",
           cw_test_data_dir());
  FILE *fp = fopen(path, "r");
  CHECK(fp != NULL);
  det_rec_t *r = det_new(NULL);
  int64_t start = DET_MIDNIGHT_MS + 14 * DET_HOUR_MS;
  int n = 0, charging = 0;
  while (fgets(line, sizeof(line), fp)) {
    char *f[3];
    if (cw_csv_split(line, f, 3) < 2 || !strchr("0123456789", f[0][0])) continue; /* header */
    cw_reading_t rd = det_reading("NB-0001", 1, start + llround(atof(f[0])));
    rd.have = CW_HAVE_W;
    rd.w = (float)atof(f[1]);
    if (det_feed(r, &rd) == CW_REJ_OK) n++;
    if (rd.w >= 15) charging++;
    cw_engine_sweep(r->e, rd.ts_ms);
  }
  fclose(fp);
  int events = r->n;
  if (events) det_dump(r, start);
  det_free(r);
  CHECK_EQ(n, 308);
  CHECK(charging > 250);
  CHECK_EQ(events, 0);
}
