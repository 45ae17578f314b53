/* pipeline.c - the in-process pipeline benchmark (no I/O): realistic payloads
 * in memory go through the daemon's own worker (daemon/worker.c: the same
 * cw_worker_poll its thread runs) from an ingest ring filled by a producer
 * thread; the consumer thread runs the worker and COPY-encodes what it puts
 * in its reading ring, as the writer does. Printed beside the ceiling
 * measured in the same run (bare cJSON parse of the same payloads) and the
 * intermediate stages (decode, detect: the lib/ calls alone), so we see
 * where time goes. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "copy.h"
#include "cw.h"
#include "decode.h"
#include "detect.h"
#include "env.h"
#include "ingest.h"
#include "ring.h"
#include "worker.h"

#define SOCKETS_PER_STATION 10
#define COPY_RESET_ROWS 5000 /* [postgres] batch_rows default */
#define BURST 64             /* as the worker thread */
#define OUT_RING_BYTES (4u << 20) /* reading ring: holds a burst's readings many times over */

typedef struct msg {
  size_t off;      /* topic at buf+off, payload right after */
  uint16_t tlen;
  uint32_t plen;
  uint32_t nread;  /* readings in this message */
} msg_t;

typedef struct corpus {
  char *buf;
  size_t len, cap;
  msg_t *msgs;
  size_t nmsgs;
  uint64_t readings, payload_bytes;
  int64_t now_ms;
} corpus_t;

static uint64_t rng_state = 42;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }

static double clock_s(clockid_t id) { /* seconds, for figures (lib/clock.h has ms) */
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the calling thread: on a shared machine wall time also counts
 * the time other processes held the core, CPU time does not. */
static double cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

typedef struct tm2 {
  double wall, cpu; /* seconds; cpu = the measuring (consumer) thread */
} tm2_t;

/* One reading, ~158 bytes like the measured real payloads (bench/README.md):
 * the contract fields plus a few a controller adds (t_amb, a
 * sequence number, signal strength, firmware) that the decoder skips.
 * About 1 % are anomalous (overload, overheating, smoke). */
static int fmt_reading(char *out, size_t cap, int socket, int64_t ts, uint64_t seq,
                       double base_w, double *wh) {
  double w = base_w > 0 ? base_w * (0.99 + 0.02 * unif()) : 0;
  double t = 22 + base_w * 0.04 + 0.4 * unif();
  int smoke = 0;
  double p = unif();
  if (p < 0.004) w = 1200 + 20 * unif();
  else if (p < 0.008) t = 92 + 10 * unif();
  else if (p < 0.010) smoke = 1;
  double v = 222 + 10 * unif();
  *wh += w * 10 / 3600.0;
  const char *sock = socket ? "\"socket\":" : "";
  return snprintf(out, cap,
                  "{%s%.0d%s\"ts\":%lld,\"v\":%.2f,\"a\":%.4f,\"w\":%.2f,\"wh\":%.3f,\"t\":%.2f,"
                  "\"t_amb\":%.2f,\"smoke\":%d,\"state\":\"%s\",\"seq\":%llu,\"rssi\":-%d,"
                  "\"fw\":\"CXC-2.4.1\"}",
                  sock, socket, socket ? "," : "", (long long)ts, v, w / v, w, *wh, t,
                  20 + 2 * unif(), smoke, w > 0 ? "charging" : "idle",
                  (unsigned long long)seq, 50 + (int)(rnd() % 40));
}

static int corpus_reserve(corpus_t *c, size_t more) {
  if (c->len + more <= c->cap) return 0;
  size_t cap = c->cap ? c->cap : 1 << 20;
  while (cap < c->len + more) cap *= 2;
  char *b = realloc(c->buf, cap);
  if (!b) return -ENOMEM;
  c->buf = b;
  c->cap = cap;
  return 0;
}

/* N readings from `stations` stations of 10 sockets, 10 s apart per socket,
 * interleaved across stations as a broker would deliver them. */
static int corpus_build(corpus_t *c, uint64_t n, int stations, bool batched) {
  size_t nsock = (size_t)stations * SOCKETS_PER_STATION;
  double *wh = calloc(nsock, sizeof *wh), *base_w = calloc(nsock, sizeof *base_w);
  uint64_t per_msg = batched ? SOCKETS_PER_STATION : 1;
  size_t nmsgs = (size_t)((n + per_msg - 1) / per_msg);
  c->msgs = calloc(nmsgs, sizeof *c->msgs);
  if (!wh || !base_w || !c->msgs) {
    free(wh);
    free(base_w);
    return -ENOMEM;
  }
  /* Each socket keeps one charger for the whole corpus: idle (35 %),
   * lead-acid 150-250 W, or lithium ~70-77 W (bench/README.md). */
  for (size_t i = 0; i < nsock; i++) {
    double p = unif();
    base_w[i] = p < 0.35 ? 0 : p < 0.75 ? 150 + 100 * unif() : 70 + 7 * unif();
  }
  uint64_t rounds = (n + nsock - 1) / nsock;
  c->now_ms = (int64_t)time(NULL) * 1000;
  int64_t base = c->now_ms - 3600 * 1000 - (int64_t)rounds * 10000;
  uint64_t seq = 0;
  for (size_t m = 0; m < nmsgs; m++) {
    uint64_t first = m * per_msg;
    size_t sock = (size_t)(first % nsock);
    int st = (int)(sock / SOCKETS_PER_STATION);
    int64_t ts = base + (int64_t)(first / nsock) * 10000 + st % 1000;
    if (corpus_reserve(c, 64 + 256 * per_msg)) goto nomem;
    msg_t *mm = &c->msgs[m];
    mm->off = c->len;
    if (batched)
      c->len += (size_t)sprintf(c->buf + c->len, "cw/CX-%04d/telemetry", st + 1);
    else
      c->len += (size_t)sprintf(c->buf + c->len, "cw/CX-%04d/%d/telemetry", st + 1,
                                (int)(sock % SOCKETS_PER_STATION) + 1);
    mm->tlen = (uint16_t)(c->len - mm->off);
    size_t p0 = c->len;
    if (batched) c->buf[c->len++] = '[';
    for (uint64_t k = 0; k < per_msg && first + k < n; k++) {
      size_t s = (size_t)((first + k) % nsock);
      if (k) c->buf[c->len++] = ',';
      c->len += (size_t)fmt_reading(c->buf + c->len, 256, batched ? (int)(s % 10) + 1 : 0, ts,
                                    seq++, base_w[s], &wh[s]);
      mm->nread++;
    }
    if (batched) c->buf[c->len++] = ']';
    mm->plen = (uint32_t)(c->len - p0);
    c->payload_bytes += mm->plen;
    c->readings += mm->nread;
  }
  c->nmsgs = nmsgs;
  free(wh);
  free(base_w);
  return 0;
nomem:
  free(wh);
  free(base_w);
  return -ENOMEM;
}

/* ------------------------------------------------------------ consumer work */
/* The decode-only and decode + detect stages call lib/ directly (they are
 * the parts of the worker, timed apart); the full stages run the worker. */
typedef struct work {
  const cw_decode_cfg_t *dcfg;
  cw_engine_t *eng; /* NULL: decode only */
  int64_t now_ms;
  uint64_t accepted, rejected, duplicates, alerts;
  int64_t next_id;
} work_t;

static void on_alert(void *ctx, const cw_alert_event_t *ev) {
  (void)ev;
  ((work_t *)ctx)->alerts++;
}
static int64_t next_id(void *ctx) { return ++((work_t *)ctx)->next_id; }

static void on_reading(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  work_t *w = ctx;
  (void)index, (void)why;
  if (!r) {
    w->rejected++;
    return;
  }
  if (w->eng && cw_engine_process(w->eng, r, w->now_ms) != CW_REJ_OK) {
    w->duplicates++;
    return;
  }
  w->accepted++;
}

/* The daemon's worker over its three rings, and the writer's COPY batch. */
typedef struct full {
  cw_config_t cfg;
  cw_metrics_t m;
  cw_env_t env;
  cw_idgen_t ids;
  cw_ring_t *rings;  /* ingest, readings, alerts (cache-line aligned) */
  cw_worker_t *worker;
  cw_copy_t copy;
  uint64_t alerts;
} full_t;

static int ring_slots; /* --ring-slots; 0: as the daemon ships ([pipeline] ring_slots) */

/* inl: the worker in inline mode (no ingest ring: cw_worker_deliver). */
static int full_init(full_t *f, const cw_decode_cfg_t *dcfg, int inl) {
  memset(f, 0, sizeof *f);
  cw_config_defaults(&f->cfg);
  if (ring_slots > 0) f->cfg.ring_slots = ring_slots;
  f->env = (cw_env_t){.cfg = &f->cfg, .m = &f->m};
  cw_idgen_init(&f->ids, 1);
  f->rings = aligned_alloc(CW_CACHELINE, 3 * sizeof *f->rings);
  if (!f->rings) return -ENOMEM;
  memset(f->rings, 0, 3 * sizeof *f->rings);
  if (cw_ring_init(&f->rings[0], cw_ring_capacity_for_slots(f->cfg.ring_slots)) ||
      cw_ring_init(&f->rings[1], OUT_RING_BYTES) || cw_ring_init(&f->rings[2], OUT_RING_BYTES) ||
      cw_copy_init(&f->copy, 1 << 20))
    return -ENOMEM;
  cw_worker_cfg_t wc = {.env = &f->env, .dcfg = dcfg, .ingest = inl ? NULL : &f->rings[0],
                        .readings = &f->rings[1], .alerts = &f->rings[2], .ids = &f->ids};
  return cw_worker_create(&wc, &f->worker);
}

static void full_free(full_t *f) {
  cw_worker_free(f->worker);
  for (int i = 0; f->rings && i < 3; i++) cw_ring_destroy(&f->rings[i]);
  free(f->rings);
  cw_copy_free(&f->copy);
}

/* The writer's drain_one: a reading record into the COPY batch. */
static int copy_one(void *ctx, const void *rec, size_t len) {
  full_t *f = ctx;
  cw_reading_t r;
  if (len != sizeof r) return 0;
  memcpy(&r, rec, sizeof r); /* records are byte-aligned in the ring */
  cw_copy_add(&f->copy, &r);
  if (f->copy.rows >= COPY_RESET_ROWS) {
    cw_copy_finish(&f->copy);
    cw_copy_reset(&f->copy);
  }
  return 0;
}

static int count_alert(void *ctx, const void *rec, size_t len) {
  (void)rec, (void)len;
  ((full_t *)ctx)->alerts++;
  return 0;
}

/* Everything the worker produced, consumed as the writer and sink do. */
static void full_consume(full_t *f) {
  while (cw_ring_pop_burst(&f->rings[1], 4096, copy_one, f)) {
  }
  while (cw_ring_pop_burst(&f->rings[2], 256, count_alert, f)) {
  }
}

/* One worker step, then everything it produced consumed. */
static size_t full_step(full_t *f) {
  size_t n = cw_worker_poll(f->worker, BURST);
  full_consume(f);
  return n;
}

static void full_counts(full_t *f, uint64_t *acc, uint64_t *rej, uint64_t *dup, uint64_t *alerts) {
  *acc = atomic_load(&f->m.readings_accepted);
  *dup = atomic_load(&f->m.rejects[CW_REJ_DUPLICATE]);
  *rej = 0;
  for (int i = 0; i < CW_REJ__COUNT; i++) *rej += atomic_load(&f->m.rejects[i]);
  *rej -= *dup;
  *alerts = f->alerts;
}

/* ------------------------------------------------------------ stages */
static tm2_t stage_cjson(const corpus_t *c) {
  double t0 = now_s(), c0 = cpu_s();
  size_t bad = 0;
  for (size_t i = 0; i < c->nmsgs; i++) {
    const msg_t *m = &c->msgs[i];
    cJSON *j = cJSON_ParseWithLength(c->buf + m->off + m->tlen, m->plen);
    if (!j) bad++;
    cJSON_Delete(j);
  }
  tm2_t dt = {now_s() - t0, cpu_s() - c0};
  if (bad) fprintf(stderr, "pipeline: cJSON rejected %zu payloads\n", bad);
  return dt;
}

static tm2_t stage_direct(const corpus_t *c, work_t *w) {
  double t0 = now_s(), c0 = cpu_s();
  for (size_t i = 0; i < c->nmsgs; i++) {
    const msg_t *m = &c->msgs[i];
    cw_decode(w->dcfg, c->buf + m->off, m->tlen, c->buf + m->off + m->tlen, m->plen, w->now_ms,
              on_reading, w);
  }
  return (tm2_t){now_s() - t0, cpu_s() - c0};
}

static int push_msg(cw_ring_t *r, const corpus_t *c, const msg_t *m, const _Atomic int *stop) {
  cw_ingest_hdr_t h = {.recv_ms = c->now_ms, .topic_len = m->tlen, .payload_len = m->plen};
  cw_ring_part_t parts[3] = {{&h, sizeof h}, {c->buf + m->off, m->tlen},
                             {c->buf + m->off + m->tlen, m->plen}};
  return stop ? cw_ring_pushv_wait(r, parts, 3, stop) : cw_ring_pushv(r, parts, 3);
}

/* The worker on one thread: fill the ingest ring, run the worker until it
 * is empty, repeat. */
static tm2_t stage_full1(const corpus_t *c, full_t *f) {
  double t0 = now_s(), c0 = cpu_s();
  for (size_t i = 0; i < c->nmsgs;) {
    int rc = push_msg(&f->rings[0], c, &c->msgs[i], NULL);
    if (rc >= 0 || rc == -EMSGSIZE) { /* -EMSGSIZE: never fits (not in this corpus) */
      i++;
      continue;
    }
    while (full_step(f)) {
    }
  }
  while (full_step(f)) {
  }
  return (tm2_t){now_s() - t0, cpu_s() - c0};
}

/* Inline (the daemon's default, one worker): every message through
 * cw_worker_deliver on this thread, as paho's receive thread calls it; the
 * reading and alert rings consumed after every BURST messages. */
static tm2_t stage_inline(const corpus_t *c, full_t *f) {
  double t0 = now_s(), c0 = cpu_s();
  for (size_t i = 0; i < c->nmsgs; i++) {
    const msg_t *m = &c->msgs[i];
    cw_msg_t msg = {c->buf + m->off, m->tlen, c->buf + m->off + m->tlen, m->plen, c->now_ms, 0};
    cw_worker_deliver(f->worker, &msg);
    if ((i + 1) % BURST == 0) full_consume(f);
  }
  full_consume(f);
  return (tm2_t){now_s() - t0, cpu_s() - c0};
}

typedef struct ringrun {
  const corpus_t *c;
  cw_ring_t *ring; /* the worker's ingest ring */
  _Atomic int done;
  _Atomic int stop;
  double producer_cpu;
} ringrun_t;

static void *producer(void *arg) {
  ringrun_t *rr = arg;
  const corpus_t *c = rr->c;
  double c0 = cpu_s();
  for (size_t i = 0; i < c->nmsgs; i++)
    if (push_msg(rr->ring, c, &c->msgs[i], &rr->stop) < 0) break;
  rr->producer_cpu = cpu_s() - c0; /* read by main after pthread_join */
  atomic_store_explicit(&rr->done, 1, memory_order_release);
  cw_ring_kick(rr->ring);
  return NULL;
}

/* Producer thread -> ingest ring -> the worker on this thread. */
static tm2_t stage_ring(const corpus_t *c, full_t *f, uint64_t *stalls, double *prod_cpu) {
  ringrun_t rr = {.c = c, .ring = &f->rings[0]};
  pthread_t th;
  tm2_t fail = {-1, -1};
  double t0 = now_s(), c0 = cpu_s();
  if (pthread_create(&th, NULL, producer, &rr)) return fail;
  for (;;) {
    if (full_step(f)) continue;
    if (atomic_load_explicit(&rr.done, memory_order_acquire) && cw_ring_empty(rr.ring)) break;
    cw_ring_wait(rr.ring, 10);
  }
  tm2_t dt = {now_s() - t0, cpu_s() - c0};
  pthread_join(th, NULL);
  *stalls = rr.ring->stalls;
  *prod_cpu = rr.producer_cpu;
  return dt;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { ST_CJSON, ST_DECODE, ST_DETECT, ST_INLINE, ST_FULL1, ST_RING, ST__N };
static const char *const st_name[ST__N] = {
    "bare cJSON parse+delete (ceiling)", "cw_decode only", "decode + detect",
    "inline: deliver + COPY, 1 thread", "worker + COPY, 1 thread",
    "pipeline: ring -> worker -> COPY"};

static void usage(FILE *f) {
  fprintf(f, "usage: pipeline [-n readings] [-r runs] [--batched] [--stations S] [--seed N]\n"
             "                [--ring-slots N]\n"
             "Defaults: -n 1000000 -r 5 --stations 2000 (10 sockets each), the ingest ring\n"
             "as the daemon's default [pipeline] ring_slots.\n");
}

int main(int argc, char **argv) {
  uint64_t n = 1000000;
  int runs = 5, stations = 2000, c, rc = 1;
  bool batched = false;
  corpus_t cp = {0};
  static const struct option opts[] = {{"batched", no_argument, 0, 'B'},
                                       {"stations", required_argument, 0, 'S'},
                                       {"seed", required_argument, 0, 'E'},
                                       {"ring-slots", required_argument, 0, 'R'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  while ((c = getopt_long(argc, argv, "n:r:h", opts, NULL)) != -1) {
    switch (c) {
    case 'n': n = strtoull(optarg, NULL, 10); break;
    case 'r': runs = atoi(optarg); break;
    case 'B': batched = true; break;
    case 'S': stations = atoi(optarg); break;
    case 'E': rng_state = strtoull(optarg, NULL, 0); break;
    case 'R': ring_slots = atoi(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (n < 1 || runs < 1 || runs > 100 || stations < 1 || stations > 9999 || ring_slots < 0 ||
      ring_slots > (1 << 20) || optind != argc) {
    usage(stderr);
    return 2;
  }
  cw_decode_cfg_t dcfg;
  cw_detect_cfg_t det;
  cw_decode_cfg_defaults(&dcfg);
  cw_detect_cfg_defaults(&det);
  if (corpus_build(&cp, n, stations, batched)) {
    fprintf(stderr, "pipeline: out of memory building %llu payloads\n", (unsigned long long)n);
    goto out;
  }
  printf("pipeline: %llu readings in %zu messages (%s), %d stations x %d sockets, "
         "%.0f payload bytes/reading, %d runs\n",
         (unsigned long long)cp.readings, cp.nmsgs, batched ? "station arrays" : "single readings",
         stations, SOCKETS_PER_STATION,
         (double)cp.payload_bytes / (double)cp.readings, runs);
  double wall[ST__N][100], cpu[ST__N][100], pcpu[100];
  uint64_t acc = 0, rej = 0, dup = 0, alerts = 0, stalls = 0;
  for (int r = 0; r < runs; r++) {
    tm2_t tm = stage_cjson(&cp);
    wall[ST_CJSON][r] = tm.wall;
    cpu[ST_CJSON][r] = tm.cpu;
    for (int s = ST_DECODE; s <= ST_DETECT; s++) {
      work_t w = {.dcfg = &dcfg, .now_ms = cp.now_ms};
      if (s == ST_DETECT && !(w.eng = cw_engine_new(&det, on_alert, next_id, &w))) goto nomem;
      tm = stage_direct(&cp, &w);
      if (w.eng) cw_engine_free(w.eng);
      wall[s][r] = tm.wall;
      cpu[s][r] = tm.cpu;
    }
    for (int s = ST_INLINE; s <= ST_RING; s++) {
      full_t f;
      if (full_init(&f, &dcfg, s == ST_INLINE)) {
        full_free(&f);
        goto nomem;
      }
      tm = s == ST_RING     ? stage_ring(&cp, &f, &stalls, &pcpu[r])
           : s == ST_INLINE ? stage_inline(&cp, &f)
                            : stage_full1(&cp, &f);
      if (s == ST_RING) full_counts(&f, &acc, &rej, &dup, &alerts);
      full_free(&f);
      if (tm.wall < 0) {
        fprintf(stderr, "pipeline: thread setup failed\n");
        goto out;
      }
      wall[s][r] = tm.wall;
      cpu[s][r] = tm.cpu;
    }
  }
  double mw[ST__N], mc[ST__N], rd = (double)cp.readings;
  for (int s = 0; s < ST__N; s++) {
    mw[s] = median(wall[s], runs);
    mc[s] = median(cpu[s], runs);
  }
  double mp = median(pcpu, runs);
  printf("%-38s %12s %10s %10s %10s\n", "stage (median of runs)", "readings/s", "wall ns",
         "cpu ns", "cpu ratio");
  for (int s = 0; s < ST__N; s++)
    printf("%-38s %12.0f %10.0f %10.0f %9.2fx\n", st_name[s], rd / mw[s], mw[s] * 1e9 / rd,
           mc[s] * 1e9 / rd, mc[s] / mc[ST_CJSON]);
  printf("(readings/s and wall ns: elapsed time; cpu ns: CPU time of the consumer thread per\n"
         " reading; cpu ratio: that over the bare cJSON ceiling. Ring producer thread: %.0f cpu"
         " ns/reading.)\n",
         mp * 1e9 / rd);
  printf("pipeline: last run accepted %llu, rejected %llu, duplicates %llu, alert events %llu,"
         " ring stalls %llu\n",
         (unsigned long long)acc, (unsigned long long)rej, (unsigned long long)dup,
         (unsigned long long)alerts, (unsigned long long)stalls);
  printf("pipeline: readings=%llu readings_per_s=%.0f ceiling_per_s=%.0f cpu_ns=%.0f"
         " ceiling_cpu_ns=%.0f cpu_ratio=%.2f inline_cpu_ns=%.0f\n",
         (unsigned long long)cp.readings, rd / mw[ST_RING], rd / mw[ST_CJSON],
         mc[ST_RING] * 1e9 / rd, mc[ST_CJSON] * 1e9 / rd, mc[ST_RING] / mc[ST_CJSON],
         mc[ST_INLINE] * 1e9 / rd);
  rc = acc + rej + dup == cp.readings ? 0 : 1;
  if (rc) fprintf(stderr, "pipeline: readings lost in the pipeline run\n");
  goto out;
nomem:
  fprintf(stderr, "pipeline: out of memory\n");
out:
  free(cp.msgs);
  free(cp.buf);
  return rc;
}
