/* hist.h - a latency histogram of relaxed atomics (any thread observes,
 * the metrics page reads), the plain one a single thread fills on a hot
 * path and adds to it now and then, and a batch's row timestamps observed
 * at its commit. */
#ifndef CW_HIST_H
#define CW_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds, observed in ms. Buckets are not cumulative here (the renderer
 * sums them); b[CW_HIST_NB] is +Inf. A value goes to the first bucket whose
 * bound it does not exceed. */
#define CW_HIST_NB 16
_Static_assert(CW_HIST_NB == 16, "cw_hist_bucket searches 16 bounds");
extern const double cw_hist_bounds[CW_HIST_NB]; /* upper bounds, seconds */
typedef struct cw_hist {
  _Atomic uint64_t b[CW_HIST_NB + 1];
  _Atomic uint64_t count;
  _Atomic uint64_t sum_ms;
} cw_hist_t;

/* A negative value (a device clock ahead) counts as 0. */
void cw_hist_observe(cw_hist_t *h, int64_t ms);
/* now_ms minus the ts of every row of a COPY buffer (lib/copy.h): parses
 * it (a spooled batch, whose readings are only bytes). */
void cw_hist_observe_copy(cw_hist_t *h, const uint8_t *buf, size_t len, int64_t now_ms);

/* The bounds in ms (cw_hist_bounds x 1000, exact: the values observed are
 * whole ms), and the bucket of a value in ms (a negative one: bucket 0),
 * 0..CW_HIST_NB: a branch-free binary search, 5 compares. */
extern const int64_t cw_hist_bound_ms[CW_HIST_NB];
static inline int cw_hist_bucket(int64_t ms) {
  if (ms > cw_hist_bound_ms[CW_HIST_NB - 1]) return CW_HIST_NB;
  int i = 0; /* the first bound not below ms is in [i, i + 16), then 8, 4, 2, 1 */
  i += (cw_hist_bound_ms[i + 7] < ms) * 8;
  i += (cw_hist_bound_ms[i + 3] < ms) * 4;
  i += (cw_hist_bound_ms[i + 1] < ms) * 2;
  i += cw_hist_bound_ms[i] < ms;
  return i;
}

/* The same histogram, plain: one thread fills it (or several under one
 * lock) and adds it to a shared one with cw_hist_add, which empties it. */
typedef struct cw_hist_local {
  uint64_t b[CW_HIST_NB + 1];
  uint64_t count;
  uint64_t sum_ms;
} cw_hist_local_t;

static inline void cw_hist_local_observe(cw_hist_local_t *l, int64_t ms) {
  if (ms < 0) ms = 0;
  l->b[cw_hist_bucket(ms)]++;
  l->count++;
  l->sum_ms += (uint64_t)ms;
}
/* Adds l to h (relaxed atomics, one per non-empty bucket) and zeroes l. */
void cw_hist_add(cw_hist_t *h, cw_hist_local_t *l);
/* h's values into out (each read relaxed: not one instant while others add). */
void cw_hist_snapshot(cw_hist_t *h, cw_hist_local_t *out);

/* A batch's rows by ts, kept while it is encoded, for observing now - ts
 * per row at its commit (when now is known) without parsing the batch:
 * runs of equal ts (a station's message shares one) as (ts, rows). */
typedef struct cw_hist_rows {
  struct cw_hist_run {
    int64_t ts_ms;
    uint64_t rows;
  } *run; /* owned */
  size_t nrun, cap;
  int lost; /* a row could not be noted (no memory): observe by parsing instead */
} cw_hist_rows_t;

/* 0 or -ENOMEM (then r->lost is set; later rows are still noted). */
int cw_hist_rows_grow(cw_hist_rows_t *r);
static inline void cw_hist_rows_note(cw_hist_rows_t *r, int64_t ts_ms) {
  if (r->nrun && r->run[r->nrun - 1].ts_ms == ts_ms) {
    r->run[r->nrun - 1].rows++;
    return;
  }
  if (r->nrun == r->cap && cw_hist_rows_grow(r)) return;
  r->run[r->nrun].ts_ms = ts_ms;
  r->run[r->nrun].rows = 1;
  r->nrun++;
}
/* now_ms minus the ts of every noted row, into l. */
void cw_hist_rows_observe(const cw_hist_rows_t *r, int64_t now_ms, cw_hist_local_t *l);
void cw_hist_rows_reset(cw_hist_rows_t *r); /* keeps the memory */
void cw_hist_rows_free(cw_hist_rows_t *r);

#endif
