/* hist.c - latency histograms (hist.h). */
#include "hist.h"

#include "copy.h"

/* 10 ms .. 1 h: a live reading is stored within a batch (100 ms - 1 s) and
 * raises within ms; a replayed backlog lands in the minutes-to-hour ones. */
const double cw_hist_bounds[CW_HIST_NB] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                           5,    10,    30,   60,  120,  300, 900, 3600};

void cw_hist_observe(cw_hist_t *h, int64_t ms) {
  if (ms < 0) ms = 0;
  int i = 0;
  while (i < CW_HIST_NB && (double)ms > cw_hist_bounds[i] * 1000.0) i++;
  atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ms, (uint64_t)ms, memory_order_relaxed);
}

typedef struct {
  cw_hist_t *h;
  int64_t now_ms;
} copy_ctx_t;

static int copy_row(void *ctx, const cw_reading_t *r) {
  copy_ctx_t *c = ctx;
  cw_hist_observe(c->h, c->now_ms - r->ts_ms);
  return 0;
}

void cw_hist_observe_copy(cw_hist_t *h, const uint8_t *buf, size_t len, int64_t now_ms) {
  copy_ctx_t c = {h, now_ms};
  (void)cw_copy_parse(buf, len, copy_row, &c);
}
