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
