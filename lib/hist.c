/* hist.c - latency histograms (hist.h). */
#include "hist.h"

#include <errno.h>
#include <stdlib.h>

#include "copy.h"

/* 10 ms .. 1 h: a live reading is stored within a batch (100 ms - 1 s) and
 * raises within ms; a replayed backlog lands in the minutes-to-hour ones. */
const double cw_hist_bounds[CW_HIST_NB] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                           5,    10,    30,   60,  120,  300, 900, 3600};
/* The same in ms, ascending (tests/test_hist.c checks both agree). */
const int64_t cw_hist_bound_ms[CW_HIST_NB] = {10,    25,    50,     100,    250,    500,
                                              1000,  2500,  5000,   10000,  30000,  60000,
                                              120000, 300000, 900000, 3600000};

void cw_hist_observe(cw_hist_t *h, int64_t ms) {
  if (ms < 0) ms = 0;
  atomic_fetch_add_explicit(&h->b[cw_hist_bucket(ms)], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ms, (uint64_t)ms, memory_order_relaxed);
}

void cw_hist_add(cw_hist_t *h, cw_hist_local_t *l) {
  if (!l->count) return;
  for (int i = 0; i <= CW_HIST_NB; i++)
    if (l->b[i]) atomic_fetch_add_explicit(&h->b[i], l->b[i], memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, l->count, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ms, l->sum_ms, memory_order_relaxed);
  *l = (cw_hist_local_t){0};
}

void cw_hist_snapshot(cw_hist_t *h, cw_hist_local_t *out) {
  for (int i = 0; i <= CW_HIST_NB; i++) out->b[i] = atomic_load_explicit(&h->b[i], memory_order_relaxed);
  out->count = atomic_load_explicit(&h->count, memory_order_relaxed);
  out->sum_ms = atomic_load_explicit(&h->sum_ms, memory_order_relaxed);
}

typedef struct {
  cw_hist_local_t *l;
  int64_t now_ms;
} copy_ctx_t;

static int copy_row(void *ctx, const cw_reading_t *r) {
  copy_ctx_t *c = ctx;
  cw_hist_local_observe(c->l, c->now_ms - r->ts_ms);
  return 0;
}

void cw_hist_observe_copy(cw_hist_t *h, const uint8_t *buf, size_t len, int64_t now_ms) {
  cw_hist_local_t l = {0};
  copy_ctx_t c = {&l, now_ms};
  (void)cw_copy_parse(buf, len, copy_row, &c);
  cw_hist_add(h, &l);
}

int cw_hist_rows_grow(cw_hist_rows_t *r) {
  size_t cap = r->cap ? r->cap * 2 : 256;
  struct cw_hist_run *run = realloc(r->run, cap * sizeof *run);
  if (!run) {
    r->lost = 1;
    return -ENOMEM;
  }
  r->run = run;
  r->cap = cap;
  return 0;
}

void cw_hist_rows_observe(const cw_hist_rows_t *r, int64_t now_ms, cw_hist_local_t *l) {
  for (size_t i = 0; i < r->nrun; i++) {
    int64_t ms = now_ms - r->run[i].ts_ms;
    uint64_t n = r->run[i].rows;
    if (ms < 0) ms = 0;
    l->b[cw_hist_bucket(ms)] += n;
    l->count += n;
    l->sum_ms += (uint64_t)ms * n;
  }
}

void cw_hist_rows_reset(cw_hist_rows_t *r) {
  r->nrun = 0;
  r->lost = 0;
}

void cw_hist_rows_free(cw_hist_rows_t *r) {
  free(r->run);
  *r = (cw_hist_rows_t){0};
}
