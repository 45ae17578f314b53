/* test_detect_util.h - utilities shared by the detection-engine tests: an
 * engine wired to an event recorder, piecewise-linear synthetic traces with
 * seeded noise, and an exact matcher for the expected alert events. */
#ifndef CW_TEST_DETECT_UTIL_H
#define CW_TEST_DETECT_UTIL_H

#include <stdint.h>

#include "cw.h"
#include "detect.h"

/* Local midnight 2026-06-01 at the default utc_offset_min 480 (UTC+8). */
#define DET_MIDNIGHT_MS 1780243200000LL
#define DET_HOUR_MS 3600000LL

typedef struct det_rec {
  cw_alert_event_t *ev;
  int n, cap;
  int64_t next_id;
  cw_engine_t *e;
} det_rec_t;

/* Engine with cfg (NULL = defaults) recording every event. */
det_rec_t *det_new(const cw_detect_cfg_t *cfg);
void det_free(det_rec_t *r);

/* One reading; fields given by have bits. */
cw_reading_t det_reading(const char *station, uint8_t socket, int64_t ts_ms);
/* Process with recv_ms = ts_ms. */
cw_reject_t det_feed(det_rec_t *r, const cw_reading_t *rd);

/* A trace segment: dur_s long, one reading every step_s, w and t linear
 * from *0 at its start towards *1 at its end (the next segment's start),
 * plus Gaussian noise of sigma noise_c on t; fields = have bits. */
typedef struct det_seg {
  double dur_s, step_s;
  double w0, w1, t0, t1;
  double noise_c;
  uint16_t fields;
  int8_t smoke;
} det_seg_t;

/* Feed segments back to back from start_ms; returns readings fed. */
int det_run(det_rec_t *r, const char *station, uint8_t socket, int64_t start_ms,
            const det_seg_t *segs, int nseg, uint32_t seed);

/* Expected event: kind, severity, event, at start + t_s (within tol_s after). */
typedef struct det_exp {
  cw_kind_t kind;
  cw_severity_t sev;
  cw_event_t ev;
  double t_s;
  double tol_s;
  uint8_t socket;
} det_exp_t;

/* 1 if the recorded events are exactly exp[0..n) in order; else prints both
 * lists and returns 0. */
int det_match(const det_rec_t *r, int64_t start_ms, const det_exp_t *exp, int n);
void det_dump(const det_rec_t *r, int64_t start_ms);

#endif

/* ---- shared with bench/detect.c: real traces and generated scenarios ---- */

/* The UL FSRI cell test (tests/data/fsri-lib-ess-demo-2020, 1 Hz). */
typedef struct det_fsri_row {
  int time_s;
  int tr;          /* experimenters' thermal-runaway flag */
  double thc;      /* total hydrocarbons, ppm (> 10 ppm: venting, used as smoke) */
  double cell[9];  /* Cell 1..9 surface temperature, C */
} det_fsri_row_t;

/* Loads the file once per call; returns rows (caller frees) or -1. */
int det_fsri_load(det_fsri_row_t **out);
/* Onset of a cell's runaway: first 1 Hz step >= 1 C/s above 80 C (s), -1 if none. */
int det_fsri_onset(const det_fsri_row_t *rows, int n, int cell);

/* A labelled scenario, replayed into an engine at a sampling step. */
#define DET_MAX_LABELS 9
typedef struct det_scen_out {
  int64_t start_ms;
  double socket_hours;
  int nlabel;
  uint8_t label_socket[DET_MAX_LABELS]; /* sockets with a labelled runaway ... */
  int64_t label_onset_ms[DET_MAX_LABELS]; /* ... and its onset */
  uint8_t expect[CW_KIND__COUNT]; /* true incidents (raised events) per kind besides labels */
} det_scen_out_t;

typedef struct det_scen {
  const char *name;
  const char *source; /* "real: ..." or "generated: ..." */
  /* Feeds r at step_s sampling; 0 or -1 (data missing). */
  int (*run)(det_rec_t *r, int step_s, det_scen_out_t *out);
} det_scen_t;

extern const det_scen_t det_scens[];
extern const int det_nscens;
const det_scen_t *det_scen_find(const char *name);
