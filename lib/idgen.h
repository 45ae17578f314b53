/* idgen.h - the one source of alert ids: unique and increasing within a
 * process, and across restarts because it starts from the wall clock in µs
 * (a restart is later than the last run's ids at < 1 alert per µs) and is
 * raised past the largest stored id once the database is reachable. */
#ifndef CW_IDGEN_H
#define CW_IDGEN_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct cw_idgen {
  _Atomic int64_t next;
} cw_idgen_t;

static inline void cw_idgen_init(cw_idgen_t *g, int64_t first) { atomic_init(&g->next, first); }

/* Any thread. Relaxed: uniqueness needs only the atomicity of the add. */
static inline int64_t cw_idgen_next(cw_idgen_t *g) {
  return atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
}

/* Any thread: make every later id >= floor (never lowers it). */
static inline void cw_idgen_raise(cw_idgen_t *g, int64_t floor) {
  int64_t cur = atomic_load(&g->next);
  while (cur < floor && !atomic_compare_exchange_weak(&g->next, &cur, floor)) {
  }
}

#endif
