/* ring.c (bench) - throughput of the SPSC byte ring (lib/ring.c) against
 * Concurrency Kit's ck_ring in the same run: one producer and one consumer
 * thread, records of ~150 B and 2 KiB, consumer bursts of 1, 16 and 64.
 * ck_ring carries pointers to preallocated records that the producer fills
 * and the consumer reads, so both sides touch the same bytes in both rings.
 * Usage: ring [-n records] [-r runs] [-c capacity_bytes] [-P] (-P: do not pin
 * the two threads to cpu0/cpu1) */
#include <ck_ring.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

typedef enum { IMPL_OURS_SPIN, IMPL_OURS_WAIT, IMPL_CK, IMPL__COUNT } impl_t;
static const char *impl_name[IMPL__COUNT] = {"ours-spin", "ours-wait", "ck_ring"};

typedef struct {
  impl_t impl;
  size_t len;     /* record bytes */
  size_t burst;   /* consumer burst */
  uint64_t n;     /* records */
  size_t cap;     /* our ring, bytes */
  unsigned slots; /* ck ring slots */
  /* ours */
  cw_ring_t ring;
  _Atomic int stop;
  /* ck */
  ck_ring_t ck;
  ck_ring_buffer_t *ckbuf;
  uint8_t *pool;
  uint64_t pool_mask;
  size_t pool_stride;
  /* shared */
  const uint8_t *tmpl; /* source bytes of every record */
  pthread_barrier_t go;
  uint64_t consumed, sum;
  int bad;
} run_t;

static int pin_cpus;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Busy-wait step for the spinning variants: pause, and after a while give
 * the cpu away, so that a descheduled peer (a shared or 1-cpu machine) does
 * not turn every empty/full moment into a whole time slice of spinning.
 * Used identically for both rings. */
static inline void backoff(unsigned *spins) {
  if (++*spins < 1024) {
    cpu_relax();
  } else {
    *spins = 0;
    sched_yield();
  }
}

static void pin(int cpu) {
  cpu_set_t set;
  if (!pin_cpus) return;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The consumer's work on a record: read every byte (sum of 8-byte words). */
static inline uint64_t touch(const uint8_t *p, size_t len) {
  uint64_t s = 0, w;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    memcpy(&w, p + i, 8);
    s += w;
  }
  for (; i < len; i++) s += p[i];
  return s;
}

typedef struct {
  uint64_t next, sum;
  int bad;
} cons_t;

static int visit(void *ctx, const void *rec, size_t len) {
  cons_t *c = ctx;
  uint64_t seq;
  memcpy(&seq, rec, 8);
  if (seq != c->next) c->bad = 1;
  c->next++;
  c->sum += touch(rec, len);
  return 0;
}

static void *producer(void *arg) {
  run_t *r = arg;
  pin(0);
  pthread_barrier_wait(&r->go);
  for (uint64_t seq = 0; seq < r->n; seq++) {
    if (r->impl == IMPL_CK) {
      /* Fill a preallocated record (the same copy our ring does inside
       * push), then publish its pointer. */
      uint8_t *rec = r->pool + (seq & r->pool_mask) * r->pool_stride;
      memcpy(rec, &seq, 8);
      memcpy(rec + 8, r->tmpl + 8, r->len - 8);
      unsigned spins = 0;
      while (!ck_ring_enqueue_spsc(&r->ck, r->ckbuf, rec)) backoff(&spins);
    } else {
      cw_ring_part_t parts[2] = {{&seq, 8}, {r->tmpl + 8, r->len - 8}};
      if (r->impl == IMPL_OURS_WAIT) {
        if (cw_ring_pushv_wait(&r->ring, parts, 2, &r->stop) < 0) break;
      } else {
        unsigned spins = 0;
        while (cw_ring_pushv(&r->ring, parts, 2) == -EAGAIN) backoff(&spins);
      }
    }
  }
  return NULL;
}

static void *consumer(void *arg) {
  run_t *r = arg;
  cons_t c = {0, 0, 0};
  unsigned spins = 0;
  pin(1);
  pthread_barrier_wait(&r->go);
  if (r->impl == IMPL_CK) {
    /* ck_ring has no burst dequeue: a burst is that many single dequeues,
     * each of which stores c_head. */
    while (c.next < r->n) {
      size_t k = 0;
      void *p;
      while (k < r->burst && ck_ring_dequeue_spsc(&r->ck, r->ckbuf, &p)) {
        visit(&c, p, r->len);
        k++;
      }
      if (k == 0) backoff(&spins);
    }
  } else {
    while (c.next < r->n) {
      if (cw_ring_pop_burst(&r->ring, r->burst, visit, &c) == 0) {
        if (r->impl == IMPL_OURS_WAIT)
          cw_ring_wait(&r->ring, 10);
        else
          backoff(&spins);
      }
    }
  }
  r->consumed = c.next;
  r->sum = c.sum;
  r->bad = c.bad;
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t stride(size_t len) { return 8 + ((len + 7) & ~(size_t)7); }

/* ck slots holding at least as many records as our ring of cap bytes. */
static unsigned ck_slots_for(size_t cap, size_t len) {
  unsigned s = 2;
  while ((uint64_t)s < cap / stride(len) + 1) s <<= 1;
  return s;
}

/* One timed run: records/s, or a negative value on failure. */
static double run_once(impl_t impl, size_t len, size_t burst, uint64_t n, size_t cap,
                       const uint8_t *tmpl, uint64_t *stalls) {
  /* cw_ring_t and ck_ring_t keep their indices on separate cache lines:
   * calloc's 16-byte alignment would break that (and cw_ring_t's alignas). */
  size_t rsize = (sizeof(run_t) + CW_CACHELINE - 1) & ~(size_t)(CW_CACHELINE - 1);
  run_t *r = aligned_alloc(CW_CACHELINE, rsize);
  pthread_t pt, ct;
  double t0, t1, rate = -1;
  if (!r) return -1;
  memset(r, 0, sizeof *r);
  r->impl = impl;
  r->len = len;
  r->burst = burst;
  r->n = n;
  r->cap = cap;
  r->tmpl = tmpl;
  if (impl == IMPL_CK) {
    r->slots = ck_slots_for(cap, len);
    r->ckbuf = calloc(r->slots, sizeof *r->ckbuf);
    /* A record is reused only after the consumer has finished it: the
     * producer is at most slots + 1 records ahead of the one being read. */
    uint64_t pool = 1;
    while (pool < (uint64_t)r->slots + 2) pool <<= 1;
    r->pool_mask = pool - 1;
    r->pool_stride = (len + 63) & ~(size_t)63;
    r->pool = aligned_alloc(64, pool * r->pool_stride);
    if (!r->ckbuf || !r->pool) goto out;
    memset(r->pool, 0, pool * r->pool_stride);
    ck_ring_init(&r->ck, r->slots);
  } else if (cw_ring_init(&r->ring, cap) != 0) {
    goto out;
  }
  pthread_barrier_init(&r->go, NULL, 3);
  pthread_create(&pt, NULL, producer, r);
  pthread_create(&ct, NULL, consumer, r);
  pthread_barrier_wait(&r->go);
  t0 = now_s();
  pthread_join(pt, NULL);
  pthread_join(ct, NULL);
  t1 = now_s();
  pthread_barrier_destroy(&r->go);
  if (r->bad || r->consumed != n) {
    fprintf(stderr, "%s: lost or reordered records (%llu of %llu)\n", impl_name[impl],
            (unsigned long long)r->consumed, (unsigned long long)n);
    goto out;
  }
  rate = (double)n / (t1 - t0);
  if (stalls) *stalls = r->ring.stalls;
out:
  if (impl == IMPL_CK) {
    free(r->ckbuf);
    free(r->pool);
  } else {
    cw_ring_destroy(&r->ring);
  }
  free(r);
  return rate;
}

static double cpu_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One thread, no contention: push `burst` records then consume them, over
 * and over; CPU ns per record (thread CPU time, so other load on the
 * machine does not count). The cost of the ring operations and copies
 * themselves, without cache-line transfers between cores. */
static double single_ns(impl_t impl, size_t len, size_t burst, uint64_t n, size_t cap,
                        const uint8_t *tmpl) {
  size_t rsize = (sizeof(run_t) + CW_CACHELINE - 1) & ~(size_t)(CW_CACHELINE - 1);
  run_t *r = aligned_alloc(CW_CACHELINE, rsize);
  cons_t c = {0, 0, 0};
  double t0, t1, ns = -1;
  if (!r) return -1;
  memset(r, 0, sizeof *r);
  if (impl == IMPL_CK) {
    r->slots = ck_slots_for(cap, len);
    r->ckbuf = calloc(r->slots, sizeof *r->ckbuf);
    r->pool_stride = (len + 63) & ~(size_t)63;
    r->pool = aligned_alloc(64, (size_t)r->slots * r->pool_stride);
    if (!r->ckbuf || !r->pool) goto out;
    memset(r->pool, 0, (size_t)r->slots * r->pool_stride);
    r->pool_mask = r->slots - 1;
    ck_ring_init(&r->ck, r->slots);
  } else if (cw_ring_init(&r->ring, cap) != 0) {
    goto out;
  }
  t0 = cpu_now_s();
  for (uint64_t seq = 0; seq < n;) {
    for (size_t b = 0; b < burst; b++, seq++) {
      if (impl == IMPL_CK) {
        uint8_t *rec = r->pool + (seq & r->pool_mask) * r->pool_stride;
        memcpy(rec, &seq, 8);
        memcpy(rec + 8, tmpl + 8, len - 8);
        if (!ck_ring_enqueue_spsc(&r->ck, r->ckbuf, rec)) goto out;
      } else {
        cw_ring_part_t parts[2] = {{&seq, 8}, {tmpl + 8, len - 8}};
        if (cw_ring_pushv(&r->ring, parts, 2) < 0) goto out;
      }
    }
    if (impl == IMPL_CK) {
      void *p;
      while (ck_ring_dequeue_spsc(&r->ck, r->ckbuf, &p)) visit(&c, p, len);
    } else {
      cw_ring_pop_burst(&r->ring, burst, visit, &c);
    }
  }
  t1 = cpu_now_s();
  if (!c.bad && c.next >= n) ns = (t1 - t0) * 1e9 / (double)c.next;
out:
  if (impl == IMPL_CK) {
    free(r->ckbuf);
    free(r->pool);
  } else {
    cw_ring_destroy(&r->ring);
  }
  free(r);
  return ns;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  uint64_t n = 5000000;
  int runs = 5, opt;
  size_t cap = 1 << 20;
  static const size_t sizes[] = {150, 2048};
  static const size_t bursts[] = {1, 16, 64};
  static uint8_t tmpl[4096];
  int nopin = 0;
  while ((opt = getopt(argc, argv, "n:r:c:Ph")) != -1) {
    switch (opt) {
      case 'n': n = (uint64_t)strtod(optarg, NULL); break;
      case 'r': runs = atoi(optarg); break;
      case 'c': cap = (size_t)strtoull(optarg, NULL, 0); break;
      case 'P': nopin = 1; break;
      default:
        fprintf(stderr, "usage: %s [-n records] [-r runs] [-c capacity_bytes] [-P (no pinning)]\n", argv[0]);
        return opt == 'h' ? 0 : 2;
    }
  }
  if (n == 0 || runs < 1 || runs > 99) {
    fprintf(stderr, "bad -n or -r\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof tmpl; i++) tmpl[i] = (uint8_t)(i * 31 + 7);
  pin_cpus = !nopin && sysconf(_SC_NPROCESSORS_ONLN) >= 2;

  printf("SPSC ring throughput, %llu records per run, median of %d runs, %s\n",
         (unsigned long long)n, runs,
         pin_cpus ? "producer on cpu0, consumer on cpu1" : "threads not pinned (1 cpu)");
  printf("ours: %zu-byte ring, records copied in by value (pushv: seq + body);"
         " ours-spin busy-polls, ours-wait uses pushv_wait + cw_ring_wait (futex)\n", cap);
  printf("ck_ring: ck_ring_enqueue_spsc/dequeue_spsc of pointers to preallocated records"
         " the producer fills (memcpy) and the consumer reads; no burst API, so a burst"
         " is B single dequeues; producers push one record at a time in all rings\n");
  printf("consumer work per record: check seq, sum all bytes\n\n");
  printf("%6s %6s %8s | %12s %12s %12s | %8s %8s\n", "bytes", "burst", "ck_slots",
         "ours-spin", "ours-wait", "ck_ring", "spin/ck", "wait/ck");
  printf("%6s %6s %8s | %12s %12s %12s | %8s %8s\n", "", "", "", "Mrec/s", "Mrec/s",
         "Mrec/s", "", "");
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    if (sizes[si] > cap / 4) continue;
    for (size_t bi = 0; bi < sizeof bursts / sizeof bursts[0]; bi++) {
      double med[IMPL__COUNT], rates[IMPL__COUNT][99];
      /* Interleave implementations run by run so drift hits all alike. */
      for (int k = 0; k < runs; k++) {
        for (int im = 0; im < IMPL__COUNT; im++) {
          rates[im][k] = run_once((impl_t)im, sizes[si], bursts[bi], n, cap, tmpl, NULL);
          if (rates[im][k] < 0) return 1;
        }
      }
      for (int im = 0; im < IMPL__COUNT; im++) {
        qsort(rates[im], (size_t)runs, sizeof(double), cmp_double);
        med[im] = rates[im][runs / 2];
      }
      printf("%6zu %6zu %8u | %12.2f %12.2f %12.2f | %8.2f %8.2f\n", sizes[si], bursts[bi],
             ck_slots_for(cap, sizes[si]), med[IMPL_OURS_SPIN] / 1e6,
             med[IMPL_OURS_WAIT] / 1e6, med[IMPL_CK] / 1e6, med[IMPL_OURS_SPIN] / med[IMPL_CK],
             med[IMPL_OURS_WAIT] / med[IMPL_CK]);
      fflush(stdout);
    }
  }
  printf("\nsingle thread, no contention (push B, then consume B; thread CPU time):\n");
  printf("%6s %6s | %12s %12s | %8s\n", "bytes", "B", "ours ns/rec", "ck ns/rec", "ours/ck");
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    if (sizes[si] > cap / 4) continue;
    for (size_t bi = 0; bi < sizeof bursts / sizeof bursts[0]; bi++) {
      double v[2][99], m[2];
      for (int k = 0; k < runs; k++) {
        v[0][k] = single_ns(IMPL_OURS_SPIN, sizes[si], bursts[bi], n, cap, tmpl);
        v[1][k] = single_ns(IMPL_CK, sizes[si], bursts[bi], n, cap, tmpl);
        if (v[0][k] < 0 || v[1][k] < 0) return 1;
      }
      for (int i = 0; i < 2; i++) {
        qsort(v[i], (size_t)runs, sizeof(double), cmp_double);
        m[i] = v[i][runs / 2];
      }
      printf("%6zu %6zu | %12.1f %12.1f | %8.2f\n", sizes[si], bursts[bi], m[0], m[1],
             m[0] / m[1]);
      fflush(stdout);
    }
  }
  return 0;
}
