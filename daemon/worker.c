/* worker.c - one detection worker thread. It owns one detection engine and
 * every socket of the stations routed to it (FNV-1a of the station name), so
 * the hot path takes no locks: ingest ring in (from paho's receive thread),
 * decode + validate + detect, reading ring out (to the writer), alert ring
 * out (to the main loop). Also the daemon-wide helpers every thread uses
 * (clock, routing, alert ids): they live here rather than in main.c so that
 * the unit test binary, which links every daemon object but main.o, has them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

#define BURST 64
#define IDLE_WAIT_MS 100
#define SWEEP_MS 1000
#define ALERT_RING_MAX (256u << 10) /* ~800 events; the main loop drains it in microseconds */

struct cw_worker {
  cw_daemon_t *d;
  int index;
  pthread_t thread;
  int started;
  cw_engine_t *engine;
  cw_decode_cfg_t dcfg;
  cw_ring_t ingest;   /* producer: paho receive thread; consumer: this thread */
  cw_ring_t readings; /* producer: this thread; consumer: writer thread */
  cw_ring_t alerts;   /* producer: this thread; consumer: main loop */
  pthread_mutex_t ctl_mu;
  cw_ctl_t *ctl_head, *ctl_tail; /* FIFO: restore order matters (policies before state) */
  _Atomic int ctl_pending;        /* set after an enqueue: spares the mutex per burst */
  _Atomic int stop;   /* set by cw_worker_stop: drain the ingest ring, then exit */
  _Atomic int done;   /* set by the thread as it exits */
  uint64_t sockets;   /* last value added to d->m.sockets_tracked */
  /* current record, for the decode callback */
  const char *topic;
  size_t topic_len;
  const void *payload;
  size_t payload_len;
  int64_t recv_ms;
};

static const _Atomic int never = 0; /* stop flag for pushes that must not give up */

/* ----------------------------------------------------------- daemon-wide */

int64_t cw_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cw_daemon_route(const cw_daemon_t *d, const char *station, size_t len) {
  /* FNV-1a 32-bit (Fowler/Noll/Vo): cheap, and stable across restarts and
   * builds, so a station keeps its worker */
  uint32_t h = 2166136261u;
  if (d->nworkers <= 1) return 0;
  for (size_t i = 0; i < len; i++) {
    h ^= (uint8_t)station[i];
    h *= 16777619u;
  }
  return (int)(h % (uint32_t)d->nworkers);
}

int64_t cw_daemon_alert_id(cw_daemon_t *d) {
  return atomic_fetch_add_explicit(&d->next_alert_id, 1, memory_order_relaxed);
}

/* ----------------------------------------------------------- the worker */

static size_t ring_capacity(int slots) {
  size_t want = (size_t)slots * 256, cap = 4096;
  while (cap < want) cap <<= 1;
  return cap;
}

static int64_t next_id(void *ctx) { return cw_daemon_alert_id(((cw_worker_t *)ctx)->d); }

/* Engine -> alert ring. Waits while the ring is full (the main loop drains
 * it; cw_worker_stop keeps draining while it waits for us). */
static void on_alert(void *ctx, const cw_alert_event_t *ev) {
  cw_worker_t *w = ctx;
  cw_ring_part_t part = {ev, sizeof *ev};
  int rc = cw_ring_pushv_wait(&w->alerts, &part, 1, &never);
  if (rc == 1) cw_alerts_wake(w->d->alerts);
  else if (rc < 0) cw_log(CW_LOG_ERROR, "worker %d: alert ring push: %s", w->index, strerror(-rc));
}

static void reject(cw_worker_t *w, cw_reject_t why, int index, const char *detail) {
  if ((unsigned)why >= CW_REJ__COUNT) return;
  atomic_fetch_add_explicit(&w->d->m.rejects[why], 1, memory_order_relaxed);
  if (w->d->deadletter)
    cw_deadletter_write(w->d->deadletter, why, index, detail, w->topic, w->topic_len, w->payload,
                        w->payload_len);
}

static void on_reading(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  cw_worker_t *w = ctx;
  cw_daemon_t *d = w->d;
  if (!r) {
    reject(w, why, index, NULL);
    return;
  }
  cw_reject_t rc = cw_engine_process(w->engine, r, w->recv_ms);
  if (rc == CW_REJ_DUPLICATE) {
    char detail[96];
    snprintf(detail, sizeof detail, "socket %u ts %lld not after the last stored ts",
             (unsigned)r->socket, (long long)r->ts_ms);
    reject(w, CW_REJ_DUPLICATE, index, detail);
    return;
  }
  if (rc != CW_REJ_OK) /* out of memory for socket state: store it, detection skipped */
    cw_log(CW_LOG_ERROR, "worker %d: detection failed for %s/%u (out of memory)", w->index,
           r->station, (unsigned)r->socket);
  uint64_t before = w->readings.stalls;
  cw_ring_part_t part = {r, sizeof *r};
  int prc = cw_ring_pushv_wait(&w->readings, &part, 1, &never);
  if (w->readings.stalls != before)
    atomic_fetch_add_explicit(&d->m.writer_stalls, w->readings.stalls - before,
                              memory_order_relaxed);
  if (prc < 0) {
    cw_log(CW_LOG_ERROR, "worker %d: reading ring push: %s", w->index, strerror(-prc));
    return;
  }
  atomic_fetch_add_explicit(&d->m.readings_accepted, 1, memory_order_relaxed);
}

static int on_record(void *ctx, const void *rec, size_t len) {
  cw_worker_t *w = ctx;
  cw_ingest_hdr_t h;
  if (len < sizeof h) return 0;
  memcpy(&h, rec, sizeof h);
  if (sizeof h + (size_t)h.topic_len + h.payload_len > len) return 0; /* producer bug */
  w->topic = (const char *)rec + sizeof h;
  w->topic_len = h.topic_len;
  w->payload = w->topic + h.topic_len;
  w->payload_len = h.payload_len;
  w->recv_ms = h.recv_ms;
  cw_decode(&w->dcfg, w->topic, w->topic_len, w->payload, w->payload_len, h.recv_ms, on_reading,
            w);
  return 0;
}

static void apply_ctl(cw_worker_t *w, cw_ctl_t *c) {
  int rc = 0;
  switch (c->type) {
  case CW_CTL_STATION: rc = cw_engine_set_station(w->engine, c->station, &c->station_policy); break;
  case CW_CTL_SOCKET:
    rc = cw_engine_set_socket(w->engine, c->station, c->socket, &c->socket_policy);
    break;
  case CW_CTL_DETECT_CFG: cw_engine_set_cfg(w->engine, &c->det); break;
  case CW_CTL_RESTORE_TS:
    rc = cw_engine_restore_last_ts(w->engine, c->station, c->socket, c->ts_ms);
    break;
  case CW_CTL_RESTORE_ALERT: rc = cw_engine_restore_alert(w->engine, &c->alert); break;
  case CW_CTL_OPERATOR:
    rc = cw_engine_operator(w->engine, c->alert.id, c->alert.event, c->alert.by, cw_now_ms());
    if (rc == -ENOENT) rc = 0; /* another worker holds it (commands are broadcast) */
    else if (rc == -EINVAL)
      cw_log(CW_LOG_WARN, "worker %d: alert %lld: %s not allowed in its state", w->index,
             (long long)c->alert.id, cw_event_name(c->alert.event));
    break;
  }
  if (rc && rc != -EINVAL)
    cw_log(CW_LOG_ERROR, "worker %d: control %d: %s", w->index, (int)c->type, strerror(-rc));
}

static void drain_ctl(cw_worker_t *w) {
  /* acquire pairs with the release store in cw_worker_post: a post made
   * before this exchange is seen now, a later one sets the flag again */
  if (!atomic_exchange_explicit(&w->ctl_pending, 0, memory_order_acquire)) return;
  pthread_mutex_lock(&w->ctl_mu);
  cw_ctl_t *c = w->ctl_head;
  w->ctl_head = w->ctl_tail = NULL;
  pthread_mutex_unlock(&w->ctl_mu);
  while (c) {
    cw_ctl_t *n = c->next;
    apply_ctl(w, c);
    free(c);
    c = n;
  }
}

static void update_sockets(cw_worker_t *w) {
  uint64_t n = cw_engine_sockets(w->engine);
  if (n != w->sockets) {
    /* each worker adds its own delta: the gauge is the sum over workers */
    atomic_fetch_add_explicit(&w->d->m.sockets_tracked, n - w->sockets, memory_order_relaxed);
    w->sockets = n;
  }
}

static void *worker_main(void *arg) {
  cw_worker_t *w = arg;
  int64_t last_sweep = cw_now_ms();
  for (;;) {
    drain_ctl(w);
    size_t n = cw_ring_pop_burst(&w->ingest, BURST, on_record, w);
    int64_t now = cw_now_ms();
    if (now - last_sweep >= SWEEP_MS || now < last_sweep) {
      cw_engine_sweep(w->engine, now);
      update_sockets(w);
      last_sweep = now;
    }
    if (n == 0) {
      /* stop only once the ring is empty: everything paho handed us is ours */
      if (atomic_load_explicit(&w->stop, memory_order_acquire) && cw_ring_empty(&w->ingest)) break;
      cw_ring_wait(&w->ingest, IDLE_WAIT_MS);
    }
  }
  drain_ctl(w); /* operator actions that raced the stop still get logged */
  update_sockets(w);
  atomic_store_explicit(&w->done, 1, memory_order_release);
  return NULL;
}

int cw_worker_create(cw_daemon_t *d, int index, cw_worker_t **out) {
  /* cw_ring_t is cache-line aligned (producer and consumer indices on their
   * own lines): calloc's 16-byte alignment would break that, so allocate
   * aligned and zero by hand. */
  size_t sz = (sizeof(cw_worker_t) + CW_CACHELINE - 1) / CW_CACHELINE * CW_CACHELINE;
  cw_worker_t *w = aligned_alloc(CW_CACHELINE, sz);
  int rc;
  if (!w) return -ENOMEM;
  memset(w, 0, sz);
  w->d = d;
  w->index = index;
  pthread_mutex_init(&w->ctl_mu, NULL);
  if ((rc = cw_config_decode_cfg(&d->cfg, &w->dcfg))) goto fail_mu;
  size_t cap = ring_capacity(d->cfg.ring_slots);
  if ((rc = cw_ring_init(&w->ingest, cap))) goto fail_mu;
  if ((rc = cw_ring_init(&w->readings, cap))) goto fail_ingest;
  if ((rc = cw_ring_init(&w->alerts, cap < ALERT_RING_MAX ? cap : ALERT_RING_MAX))) goto fail_readings;
  w->engine = cw_engine_new(&d->cfg.det, on_alert, next_id, w);
  if (!w->engine) {
    rc = -ENOMEM;
    goto fail_alerts;
  }
  *out = w;
  return 0;
fail_alerts:
  cw_ring_destroy(&w->alerts);
fail_readings:
  cw_ring_destroy(&w->readings);
fail_ingest:
  cw_ring_destroy(&w->ingest);
fail_mu:
  pthread_mutex_destroy(&w->ctl_mu);
  free(w);
  return rc;
}

int cw_worker_start(cw_worker_t *w) {
  int rc = pthread_create(&w->thread, NULL, worker_main, w);
  if (rc) return -rc;
  w->started = 1;
  return 0;
}

cw_ring_t *cw_worker_ingest(cw_worker_t *w) { return &w->ingest; }
cw_ring_t *cw_worker_readings(cw_worker_t *w) { return &w->readings; }
cw_ring_t *cw_worker_alert_ring(cw_worker_t *w) { return &w->alerts; }

void cw_worker_post(cw_worker_t *w, cw_ctl_t *ctl) {
  ctl->next = NULL;
  pthread_mutex_lock(&w->ctl_mu);
  if (w->ctl_tail) w->ctl_tail->next = ctl;
  else w->ctl_head = ctl;
  w->ctl_tail = ctl;
  pthread_mutex_unlock(&w->ctl_mu);
  atomic_store_explicit(&w->ctl_pending, 1, memory_order_release); /* pairs with drain_ctl */
  cw_ring_kick(&w->ingest); /* the worker may be asleep in cw_ring_wait */
}

void cw_worker_stop(cw_worker_t *w) {
  if (!w->started) return;
  atomic_store_explicit(&w->stop, 1, memory_order_release);
  cw_ring_kick(&w->ingest);
  /* Called from the main loop, which is also the alert ring's consumer: keep
   * draining alerts while the worker finishes, or a full alert ring would
   * leave both of us waiting for each other. */
  while (!atomic_load_explicit(&w->done, memory_order_acquire)) {
    if (w->d->alerts) cw_alerts_drain(w->d->alerts);
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    cw_ring_kick(&w->ingest);
  }
  pthread_join(w->thread, NULL);
  w->started = 0;
}

void cw_worker_free(cw_worker_t *w) {
  if (!w) return;
  if (w->started) cw_worker_stop(w);
  cw_ctl_t *c = w->ctl_head;
  while (c) {
    cw_ctl_t *n = c->next;
    free(c);
    c = n;
  }
  cw_engine_free(w->engine);
  cw_ring_destroy(&w->alerts);
  cw_ring_destroy(&w->readings);
  cw_ring_destroy(&w->ingest);
  pthread_mutex_destroy(&w->ctl_mu);
  free(w);
}
