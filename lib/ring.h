/* ring.h - bounded lock-free single-producer/single-consumer byte ring with
 * variable-size records (kfifo style: free-running indices, power-of-two
 * capacity, records contiguous in memory, a pad marker where one would wrap).
 * One producer thread and one consumer thread; wake-ups cost a syscall only
 * when the other side actually sleeps. */
#ifndef CW_RING_H
#define CW_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CW_CACHELINE 64

typedef struct cw_ring {
  /* consumer-owned line */
  alignas(CW_CACHELINE) _Atomic uint64_t tail; /* bytes consumed (free-running) */
  _Atomic uint32_t consumer_sleeping;          /* 1 while consumer waits for data */
  _Atomic uint32_t data_seq;                   /* futex word bumped on wake-up */
  uint64_t cached_head;                        /* consumer-private last seen head */
  _Atomic uint32_t kicked;                     /* cw_ring_kick latch, cleared by wait */
  /* producer-owned line */
  alignas(CW_CACHELINE) _Atomic uint64_t head; /* bytes produced (free-running) */
  _Atomic uint32_t producer_sleeping;          /* 1 while producer waits for space */
  _Atomic uint32_t space_seq;                  /* futex word bumped on wake-up */
  _Atomic uint64_t stalls;                     /* producer waits (full ring); written by
                                                  the producer only, readable by anyone */
  uint64_t cached_tail;                        /* producer-private last seen tail */
  uint64_t staged;                             /* producer-private: head + staged bytes */
  /* read-only after init */
  alignas(CW_CACHELINE) uint8_t *buf;
  uint64_t mask; /* capacity - 1 */
  uint32_t max_record; /* largest record accepted (capacity / 4) */
} cw_ring_t;

/* Capacity in bytes, a power of two >= 4096. Memory bound = capacity.
 * Returns 0, -EINVAL or -ENOMEM. */
int cw_ring_init(cw_ring_t *r, size_t capacity_bytes);
/* The capacity for a configured number of 256-byte slots: the smallest
 * power of two >= 4096 and >= slots x 256 ([pipeline] ring_slots). */
size_t cw_ring_capacity_for_slots(int slots);
void cw_ring_destroy(cw_ring_t *r);

/* Producer: push one record gathered from up to 4 parts (e.g. header, topic,
 * payload) without an intermediate copy. Returns 1 if the ring was empty
 * before this push (so the caller may wake a uv loop), 0 otherwise,
 * -EAGAIN when there is not enough space (nothing written),
 * -EMSGSIZE when the record can never fit (len > max_record). */
typedef struct cw_ring_part {
  const void *ptr;
  size_t len;
} cw_ring_part_t;
int cw_ring_pushv(cw_ring_t *r, const cw_ring_part_t *parts, int nparts);
int cw_ring_push(cw_ring_t *r, const void *rec, size_t len);

/* Producer, lazy hand-over: cw_ring_stage writes a record like
 * cw_ring_pushv but leaves it invisible to the consumer until
 * cw_ring_publish, so several records cost one publication and at most one
 * wake-up. Stage returns 0 or the errors of cw_ring_pushv (-EAGAIN: not
 * enough space besides what is staged; publish, wake, then wait with
 * cw_ring_pushv_wait, which publishes the staged records too).
 * cw_ring_publish makes every staged record visible; with wake, a sleeping
 * consumer is woken. Returns 1 when the consumer sleeps and was not woken
 * (wake == 0): a wake-up is owed (cw_ring_publish(r, 1) pays it, with or
 * without new records), 0 otherwise. cw_ring_pushv = stage + publish(1). */
int cw_ring_stage(cw_ring_t *r, const cw_ring_part_t *parts, int nparts);
int cw_ring_publish(cw_ring_t *r, int wake);

/* Producer: like cw_ring_pushv but waits (bounded spin, then futex sleep)
 * while the ring is full; counts each wait in r->stalls. Never drops.
 * Returns as cw_ring_pushv, except -EAGAIN only if *stop becomes non-zero. */
int cw_ring_pushv_wait(cw_ring_t *r, const cw_ring_part_t *parts, int nparts,
                       const _Atomic int *stop);

/* Consumer: visit up to max records in place (pointer valid only during the
 * callback), then release all their bytes at once. The callback returns 0
 * to continue or non-zero to stop after this record. Returns the number of
 * records consumed. Wakes a producer sleeping for space. */
typedef int (*cw_ring_visit_fn)(void *ctx, const void *rec, size_t len);
size_t cw_ring_pop_burst(cw_ring_t *r, size_t max, cw_ring_visit_fn fn, void *ctx);

/* Consumer: copy out one record. Returns its length, 0 if empty, or
 * -EMSGSIZE if it does not fit in cap (record left in place). */
long cw_ring_pop(cw_ring_t *r, void *out, size_t cap);

/* Consumer: sleep until the ring is non-empty or timeout_ms passes
 * (-1 = forever). No lost wake-up: sleeping flag + re-check + futex. */
void cw_ring_wait(cw_ring_t *r, int timeout_ms);
/* Anyone: wake a consumer sleeping in cw_ring_wait (e.g. for shutdown). */
void cw_ring_kick(cw_ring_t *r);

/* Approximate occupancy (either side may call). */
size_t cw_ring_used(const cw_ring_t *r);
int cw_ring_empty(const cw_ring_t *r);

#endif
