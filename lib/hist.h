/* hist.h - a latency histogram of relaxed atomics (any thread observes,
 * the metrics page reads), and the observer of a COPY buffer's rows. */
#ifndef CW_HIST_H
#define CW_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds, observed in ms. Buckets are not cumulative here (the renderer
 * sums them); b[CW_HIST_NB] is +Inf. */
#define CW_HIST_NB 16
extern const double cw_hist_bounds[CW_HIST_NB]; /* upper bounds, seconds */
typedef struct cw_hist {
  _Atomic uint64_t b[CW_HIST_NB + 1];
  _Atomic uint64_t count;
  _Atomic uint64_t sum_ms;
} cw_hist_t;

/* A negative value (a device clock ahead) counts as 0. */
void cw_hist_observe(cw_hist_t *h, int64_t ms);
/* now_ms minus the ts of every row of a COPY buffer (lib/copy.h). */
void cw_hist_observe_copy(cw_hist_t *h, const uint8_t *buf, size_t len, int64_t now_ms);

#endif
