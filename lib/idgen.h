/* idgen.h - the one source of alert ids: unique and increasing within a
 * process, and across restarts because it starts from the wall clock in µs
 * (a restart is later than the last run's ids at < 1 alert per µs) and is
 * raised past the largest stored id once the database is reachable. */
#ifndef CW_IDGEN_H
#define CW_IDGEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alert_ref.h"

/* Several processes on one database ([cluster]) each hold a slot, unique
 * among the live processes (an advisory lock): ids are then
 * counter << CW_IDGEN_SLOT_BITS | slot, the counter starting from the wall
 * clock in ms, so ids stay below the 9e15 an operator command accepts. */
#define CW_IDGEN_SLOT_BITS 10

typedef struct cw_idgen {
  _Atomic int64_t next; /* the next id, or with a slot the next counter */
  _Atomic int64_t slot; /* -1: none */
  /* Short references (lib/alert_ref.h) handed out with the ids: the UTC day
   * in the high 32 bits, the day's last sequence in the low 32. */
  _Atomic uint64_t ref;
} cw_idgen_t;

static inline void cw_idgen_init(cw_idgen_t *g, int64_t first) {
  atomic_init(&g->next, first);
  atomic_init(&g->slot, -1);
  atomic_init(&g->ref, 0);
}

/* Any thread. Relaxed: uniqueness needs only the atomicity of the add. */
static inline int64_t cw_idgen_next(cw_idgen_t *g) {
  int64_t n = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
  int64_t s = atomic_load_explicit(&g->slot, memory_order_relaxed);
  return s < 0 ? n : n << CW_IDGEN_SLOT_BITS | s;
}

static inline void idgen_raise_raw(cw_idgen_t *g, int64_t floor) {
  int64_t cur = atomic_load(&g->next);
  while (cur < floor && !atomic_compare_exchange_weak(&g->next, &cur, floor)) {
  }
}

/* Any thread: make every later id >= floor (never lowers it). */
static inline void cw_idgen_raise(cw_idgen_t *g, int64_t floor) {
  if (atomic_load(&g->slot) < 0) idgen_raise_raw(g, floor);
  else idgen_raise_raw(g, (floor >> CW_IDGEN_SLOT_BITS) + 1);
}

/* Before the first id of a cluster process, and again with a new slot after
 * a reconnect: from now on ids carry slot (0 .. 2^CW_IDGEN_SLOT_BITS - 1)
 * and stay above every id given so far and above now_ms << SLOT_BITS (a
 * process that held the slot before counted from its own start time). */
static inline void cw_idgen_set_slot(cw_idgen_t *g, int64_t slot, int64_t now_ms) {
  int64_t cur = atomic_load(&g->next);
  if (atomic_load(&g->slot) < 0) cur = (cur >> CW_IDGEN_SLOT_BITS) + 1;
  atomic_store(&g->next, cur > now_ms ? cur : now_ms);
  atomic_store(&g->slot, slot);
}

/* Any thread: the next short reference at now_ms (a CAS loop over the
 * packed per-day counter). Returns its length or a negative errno code.
 * Per process: with [cluster] two processes may give the same reference,
 * and the database then gives the later one another (schema/003_ops.sql). */
static inline int cw_idgen_ref(cw_idgen_t *g, int64_t now_ms, char *out, size_t cap) {
  uint64_t cur = atomic_load(&g->ref), nxt;
  int n;
  do {
    cw_alert_ref_ctr_t c = {(int32_t)(uint32_t)(cur >> 32), (uint32_t)cur};
    if ((n = cw_alert_ref_next(&c, now_ms, out, cap)) < 0) return n;
    nxt = (uint64_t)(uint32_t)c.day << 32 | c.last;
  } while (!atomic_compare_exchange_weak(&g->ref, &cur, nxt));
  return n;
}

/* Any thread: never hand out a sequence at or below last for day again
 * (cw_alert_ref_restore on the shared counter). */
static inline void cw_idgen_ref_restore(cw_idgen_t *g, int32_t day, uint32_t last) {
  uint64_t cur = atomic_load(&g->ref), nxt;
  do {
    cw_alert_ref_ctr_t c = {(int32_t)(uint32_t)(cur >> 32), (uint32_t)cur};
    cw_alert_ref_restore(&c, day, last);
    nxt = (uint64_t)(uint32_t)c.day << 32 | c.last;
  } while (nxt != cur && !atomic_compare_exchange_weak(&g->ref, &cur, nxt));
}

#endif
