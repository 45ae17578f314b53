/* ring.c - lock-free single-producer/single-consumer byte ring (see ring.h).
 * It carries ingest records (topic + payload + receive time) from the MQTT
 * receive thread to a worker, readings to the writer and alerts to the loop,
 * by value, within a fixed memory bound, and costs a syscall only when the
 * other side really sleeps. */
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Layout. Every record starts on an 8-byte boundary with an 8-byte header
 * (uint32 length, uint32 zero) followed by its bytes, padded to 8. A record
 * never straddles the end of the buffer: when it would, the producer writes a
 * pad header (length PAD_LEN) that tells the consumer to skip to offset 0.
 * Because offsets and the capacity are multiples of 8, a pad header always
 * fits in front of the end.
 *
 * Indices are free-running uint64 byte counts (kfifo style): head - tail is
 * the number of used bytes including pads, never more than capacity, and
 * (index & mask) is the offset. 2^64 bytes never wrap in practice.
 *
 * Invariants:
 * - only the producer writes head and the bytes in [head, tail + capacity);
 *   only the consumer writes tail and reads bytes in [tail, head);
 * - the producer publishes head only after the record bytes are written, the
 *   consumer publishes tail only after it has stopped reading the bytes;
 * - every store of head (tail) is a seq_cst RMW, and the side then loads the
 *   other side's index and sleeping flag with seq_cst loads. This is the
 *   Dekker pattern that makes both "empty edge" detection and sleeping free of
 *   lost wake-ups. seq_cst RMWs stand in for atomic_thread_fence because
 *   ThreadSanitizer does not model standalone fences (gcc rejects them under
 *   -fsanitize=thread with -Wtsan). */

#define HDR 8u
#define PAD_LEN UINT32_MAX
#define MAX_PARTS 4
#define MIN_CAPACITY 4096u
/* Spin before sleeping: roughly a few microseconds of pause instructions,
 * shorter than a futex round trip (~5-10 us for wake + reschedule). */
#define SPIN_ITERS 256
/* Producer sleeps in short slices so that a set *stop is seen promptly. */
#define PRODUCER_SLEEP_MS 10

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline uint64_t stride(uint64_t len) { return HDR + ((len + 7) & ~(uint64_t)7); }

static void futex_wait(_Atomic uint32_t *word, uint32_t expect, int timeout_ms) {
  struct timespec ts, *tp = NULL;
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    tp = &ts;
  }
  /* Returns at once (EAGAIN) if *word != expect: the kernel compares and
   * sleeps atomically, which closes the window between our re-check and
   * the sleep. EINTR and ETIMEDOUT are fine: callers re-check. */
  (void)syscall(SYS_futex, (uint32_t *)(void *)word, FUTEX_WAIT_PRIVATE, expect, tp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n) {
  (void)syscall(SYS_futex, (uint32_t *)(void *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

int cw_ring_init(cw_ring_t *r, size_t capacity_bytes) {
  if (!r || capacity_bytes < MIN_CAPACITY || (capacity_bytes & (capacity_bytes - 1)) != 0 ||
      (uint64_t)capacity_bytes > ((uint64_t)1 << 32))
    return -EINVAL;
  memset(r, 0, sizeof(*r));
  r->buf = aligned_alloc(CW_CACHELINE, capacity_bytes);
  if (!r->buf) return -ENOMEM;
  /* Touch every page now: the bound is paid at start, not as page faults
   * on the hot path. */
  memset(r->buf, 0, capacity_bytes);
  r->mask = capacity_bytes - 1;
  r->max_record = (uint32_t)(capacity_bytes / 4);
  return 0;
}

void cw_ring_destroy(cw_ring_t *r) {
  if (!r) return;
  free(r->buf);
  r->buf = NULL;
}

/* Producer: bytes a record of len needs at head, including a pad to the end
 * of the buffer when it would not fit contiguously. */
static inline uint64_t footprint(const cw_ring_t *r, uint64_t head, uint64_t len, uint64_t *pad) {
  uint64_t cap = r->mask + 1, to_end = cap - (head & r->mask), need = stride(len);
  *pad = need > to_end ? to_end : 0;
  return *pad + need;
}

/* Producer, in the sleep path only: is there room now? The seq_cst load of
 * tail follows our seq_cst exchange of producer_sleeping and pairs with the
 * consumer's exchange of tail followed by its load of producer_sleeping:
 * either we see the freed space or the consumer sees us sleeping. */
static int room_for(cw_ring_t *r, uint64_t len) {
  uint64_t pad, head = r->staged; /* own index (staged records published by then) */
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
  return head + footprint(r, head, len, &pad) - tail <= r->mask + 1;
}

static void wake_consumer(cw_ring_t *r) {
  /* Bump after seeing consumer_sleeping == 1 (an acquire edge from its
   * release exchange), so the bump is later than the data_seq value it read
   * before sleeping: FUTEX_WAIT either sees the change or gets this wake. */
  atomic_fetch_add_explicit(&r->data_seq, 1, memory_order_seq_cst);
  futex_wake(&r->data_seq, 1);
}

static void wake_producer(cw_ring_t *r) {
  /* Same edge as wake_consumer, for the producer waiting on space_seq. */
  atomic_fetch_add_explicit(&r->space_seq, 1, memory_order_seq_cst);
  futex_wake(&r->space_seq, 1);
}

int cw_ring_stage(cw_ring_t *r, const cw_ring_part_t *parts, int nparts) {
  uint64_t len = 0, pad, total, head, cap = r->mask + 1;
  uint8_t *dst;
  uint32_t hdr[2];
  if (nparts < 1 || nparts > MAX_PARTS) return -EINVAL;
  for (int i = 0; i < nparts; i++) {
    if (parts[i].len > r->max_record) return -EMSGSIZE; /* also keeps the sum from overflowing */
    len += parts[i].len;
  }
  if (len > r->max_record) return -EMSGSIZE;
  /* A zero-length record would be indistinguishable from "empty" in
   * cw_ring_pop's return value. */
  if (len == 0) return -EINVAL;

  head = r->staged; /* producer-private: the published head plus what is staged */
  total = footprint(r, head, len, &pad);
  if (head + total - r->cached_tail > cap) {
    /* Acquire pairs with the consumer's release (seq_cst) exchange of tail
     * in publish_tail: the bytes below tail are no longer being read, so we
     * may overwrite them. */
    r->cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head + total - r->cached_tail > cap) return -EAGAIN; /* nothing written */
  }
  if (pad) {
    hdr[0] = PAD_LEN;
    hdr[1] = 0;
    memcpy(r->buf + (head & r->mask), hdr, HDR);
    head += pad;
  }
  dst = r->buf + (head & r->mask);
  hdr[0] = (uint32_t)len;
  hdr[1] = 0;
  memcpy(dst, hdr, HDR);
  dst += HDR;
  for (int i = 0; i < nparts; i++) {
    if (parts[i].len) memcpy(dst, parts[i].ptr, parts[i].len);
    dst += parts[i].len;
  }
  r->staged = head + stride(len);
  return 0;
}

/* Producer: make the staged records visible; wake a sleeping consumer if
 * wake. Returns the empty edge (1: the ring was empty before them) in
 * bit 0 and "consumer asleep, not woken" in bit 1. */
static int publish_head(cw_ring_t *r, int wake) {
  uint64_t old = atomic_load_explicit(&r->head, memory_order_relaxed); /* producer owns head */
  uint64_t tail;
  int edge = 0;
  if (r->staged != old) {
    /* Release half: pairs with the consumer's acquire (seq_cst) load of head
     * in pop/pop_burst/wait, so the record bytes and headers written by
     * cw_ring_stage are visible before the consumer can see the new head.
     * Full-barrier half: orders this store before the loads of tail and
     * consumer_sleeping below (Dekker with the consumer's exchanges of tail
     * and consumer_sleeping). */
    atomic_exchange_explicit(&r->head, r->staged, memory_order_seq_cst);
    /* Pairs with the consumer's exchange of tail in publish_tail: if the
     * consumer had consumed everything before `old`, we see it here and
     * report the empty->non-empty edge; otherwise the consumer's next load
     * of head (after its exchange) sees our records. Also acquire for
     * cached_tail. */
    tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
    r->cached_tail = tail;
    edge = (int64_t)(tail - old) >= 0;
  }
  /* Pairs with the consumer's exchange of consumer_sleeping in cw_ring_wait:
   * either we see it asleep (and wake it, or report it), or it re-checks
   * after its exchange and sees our head. A flush with nothing new staged
   * follows an earlier publish that saw it asleep: a stale 1 here only
   * costs one wake-up. */
  if (!atomic_load_explicit(&r->consumer_sleeping, memory_order_seq_cst)) return edge;
  if (!wake) return edge | 2;
  wake_consumer(r);
  return edge;
}

int cw_ring_publish(cw_ring_t *r, int wake) { return publish_head(r, wake) >> 1; }

int cw_ring_pushv(cw_ring_t *r, const cw_ring_part_t *parts, int nparts) {
  int rc = cw_ring_stage(r, parts, nparts);
  if (rc < 0) {
    if (rc == -EAGAIN && r->staged != atomic_load_explicit(&r->head, memory_order_relaxed))
      publish_head(r, 1); /* a full ring's staged records must reach the consumer */
    return rc;
  }
  return publish_head(r, 1) & 1;
}

int cw_ring_push(cw_ring_t *r, const void *rec, size_t len) {
  cw_ring_part_t p = {rec, len};
  return cw_ring_pushv(r, &p, 1);
}

int cw_ring_pushv_wait(cw_ring_t *r, const cw_ring_part_t *parts, int nparts,
                       const _Atomic int *stop) {
  uint64_t len = 0;
  int rc = cw_ring_pushv(r, parts, nparts);
  if (rc != -EAGAIN) return rc;
  /* One stall per record that had to wait. Relaxed load + store: only the
   * producer writes it; readers (metrics) just want a recent value. */
  atomic_store_explicit(&r->stalls, atomic_load_explicit(&r->stalls, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  for (int i = 0; i < nparts; i++) len += parts[i].len; /* valid: pushv checked the parts */
  for (;;) {
    for (int i = 0; i < SPIN_ITERS; i++) {
      /* Relaxed: *stop is a bare flag that hands over no data; it pairs
       * with whatever store the caller uses to set it. */
      if (stop && atomic_load_explicit(stop, memory_order_relaxed)) return -EAGAIN;
      cpu_relax();
      rc = cw_ring_pushv(r, parts, nparts);
      if (rc != -EAGAIN) return rc;
    }
    /* Read the futex word before announcing sleep: a wake that comes after
     * this read changes it, so FUTEX_WAIT will not sleep through it. */
    uint32_t seq = atomic_load_explicit(&r->space_seq, memory_order_seq_cst);
    /* Release half pairs with the consumer's seq_cst load of
     * producer_sleeping in publish_tail (it then bumps space_seq after our
     * read above); full-barrier half orders it before room_for's tail load. */
    atomic_exchange_explicit(&r->producer_sleeping, 1, memory_order_seq_cst);
    if (!room_for(r, len) && !(stop && atomic_load_explicit(stop, memory_order_relaxed)))
      futex_wait(&r->space_seq, seq, PRODUCER_SLEEP_MS);
    /* Relaxed: clearing only saves the consumer a needless wake-up; a stale
     * 1 costs it one FUTEX_WAKE, never correctness. */
    atomic_store_explicit(&r->producer_sleeping, 0, memory_order_relaxed);
    if (stop && atomic_load_explicit(stop, memory_order_relaxed)) return -EAGAIN;
    rc = cw_ring_pushv(r, parts, nparts);
    if (rc != -EAGAIN) return rc;
  }
}

/* Consumer: give bytes below t back to the producer. Release half pairs
 * with the producer's acquire load of tail before it reuses space;
 * full-barrier half orders it before the load of producer_sleeping here and
 * before the consumer's next load of head (Dekker with the producer's
 * exchange of head followed by its load of tail / consumer_sleeping). */
static void publish_tail(cw_ring_t *r, uint64_t t) {
  atomic_exchange_explicit(&r->tail, t, memory_order_seq_cst);
  /* Pairs with the producer's exchange of producer_sleeping in
   * cw_ring_pushv_wait: either we see it asleep, or its room_for sees t. */
  if (atomic_load_explicit(&r->producer_sleeping, memory_order_seq_cst)) {
    /* Low watermark: wake it only once half the ring is free (which fits
     * any record, pad included), so a faster producer refills in batches
     * instead of one futex round trip per record. Not lost: a sleeping
     * producer means a non-empty ring, which we keep draining until it is
     * empty (all free); the producer also re-checks every
     * PRODUCER_SLEEP_MS. Acquire pairs with the producer's exchange of
     * head; any recent value will do. */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (h - t <= (r->mask + 1) / 2) wake_producer(r);
  }
}

/* Consumer: the record header at t (skipping a pad). t must be != head. */
static inline const uint8_t *record_at(const cw_ring_t *r, uint64_t *t, uint32_t *len) {
  const uint8_t *p = r->buf + (*t & r->mask);
  memcpy(len, p, sizeof(*len));
  if (*len == PAD_LEN) {
    /* A pad is published together with the record that follows it at 0. */
    *t += (r->mask + 1) - (*t & r->mask);
    p = r->buf;
    memcpy(len, p, sizeof(*len));
  }
  return p + HDR;
}

size_t cw_ring_pop_burst(cw_ring_t *r, size_t max, cw_ring_visit_fn fn, void *ctx) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed); /* consumer owns tail */
  uint64_t published = t, h = r->cached_head;
  size_t n = 0;
  if (max == 0) return 0;
  for (;;) {
    while (t != h) {
      uint32_t len;
      const uint8_t *rec = record_at(r, &t, &len);
      t += stride(len);
      n++;
      if (fn(ctx, rec, len) != 0 || n == max) goto out;
    }
    /* Acquire (seq_cst) pairs with the producer's release exchange of head:
     * the bytes of records below h are written. */
    h = atomic_load_explicit(&r->head, memory_order_seq_cst);
    if (h != t) continue;
    /* Looks empty. Only an emptiness seen after our tail is published (and
     * the barrier of that exchange) proves the producer will see it and
     * report the empty->non-empty edge on its next push, so publish and look
     * once more. If nothing was consumed since the last publish, the load
     * above already follows that barrier. */
    if (t == published) break;
    publish_tail(r, t);
    published = t;
    h = atomic_load_explicit(&r->head, memory_order_seq_cst);
    if (h == t) break;
  }
out:
  r->cached_head = h;
  /* All bytes of the burst go back to the producer with one store. */
  if (t != published) publish_tail(r, t);
  return n;
}

long cw_ring_pop(cw_ring_t *r, void *out, size_t cap) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed); /* consumer owns tail */
  uint32_t len;
  const uint8_t *rec;
  if (t == r->cached_head) {
    /* Acquire (seq_cst) pairs with the producer's release exchange of head;
     * seq_cst also keeps the empty-edge rule of pop_burst (our last tail
     * store was an exchange). */
    r->cached_head = atomic_load_explicit(&r->head, memory_order_seq_cst);
    if (t == r->cached_head) return 0;
  }
  rec = record_at(r, &t, &len);
  if (len > cap) return -EMSGSIZE; /* left in place; a skipped pad is not published */
  memcpy(out, rec, len);
  publish_tail(r, t + stride(len));
  return (long)len;
}

void cw_ring_wait(cw_ring_t *r, int timeout_ms) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed); /* consumer owns tail */
  for (int i = 0; i < SPIN_ITERS; i++) {
    /* Acquire pairs with the producer's exchange of head. */
    if (atomic_load_explicit(&r->head, memory_order_acquire) != t) return;
    cpu_relax();
  }
  /* Read the futex word before announcing sleep (see wake_consumer). */
  uint32_t seq = atomic_load_explicit(&r->data_seq, memory_order_seq_cst);
  /* Release half pairs with the producer's seq_cst load of
   * consumer_sleeping in cw_ring_pushv; full-barrier half orders it before
   * the re-check of head below. */
  atomic_exchange_explicit(&r->consumer_sleeping, 1, memory_order_seq_cst);
  /* Pairs with the store of kicked in cw_ring_kick: a kick that came
   * before this point is consumed here instead of being lost. */
  if (atomic_exchange_explicit(&r->kicked, 0, memory_order_seq_cst) == 0 &&
      /* Pairs with the producer's exchange of head then load of
       * consumer_sleeping: we see its record or it sees us asleep. */
      atomic_load_explicit(&r->head, memory_order_seq_cst) == t)
    futex_wait(&r->data_seq, seq, timeout_ms);
  /* Relaxed: as for producer_sleeping, a stale 1 only costs a wake-up. */
  atomic_store_explicit(&r->consumer_sleeping, 0, memory_order_relaxed);
}

void cw_ring_kick(cw_ring_t *r) {
  /* Latch first, then bump: a consumer that read data_seq before the bump
   * either sees the latch after its exchange or has the futex word changed
   * under it. */
  atomic_store_explicit(&r->kicked, 1, memory_order_seq_cst);
  atomic_fetch_add_explicit(&r->data_seq, 1, memory_order_seq_cst);
  futex_wake(&r->data_seq, INT_MAX);
}

size_t cw_ring_used(const cw_ring_t *r) {
  /* tail first: tail <= head at any instant, so a later head is >= it.
   * Acquire on both pairs with the exchanges that publish them; the value
   * is only an estimate for metrics and tests. */
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
  uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
  return (size_t)(h - t);
}

int cw_ring_empty(const cw_ring_t *r) {
  /* seq_cst so that a consumer's "empty" obeys the same edge rule as
   * cw_ring_pop_burst. */
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_seq_cst);
  return atomic_load_explicit(&r->head, memory_order_seq_cst) == t;
}

size_t cw_ring_capacity_for_slots(int slots) {
  size_t want = slots > 0 ? (size_t)slots * 256 : 0, cap = 4096;
  while (cap < want) cap <<= 1;
  return cap;
}
