/* writer_alerts.c - the writer's alert path: the bounded queue that hands
 * alert events from the main loop to the writer thread, the alert spool
 * (spool_dir/alerts) that keeps them while the database is away, and the
 * pump that stores the spooled ones, then the queued ones, in order. Alerts
 * never wait behind a readings batch: the writer pumps them every pass. A
 * mutex is enough for the queue: alert events are rare next to readings. At
 * the bound (only reached if the writer thread itself is stuck) events are
 * counted, not queued; they are already in the alert log and on MQTT. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "writer_int.h"

#define ALERT_QUEUE_MAX 100000
#define ALERT_TXN_MAX 1000          /* events per alert transaction */
#define ALERT_GAUGE_MS 10000        /* chargewatch_alerts_open refresh */
/* Alert spool record: magic, sizeof(cw_alert_event_t), then the events by
 * value; a record written by a build with another layout is refused, except
 * the 296-byte layout of before ref was appended (read with ref ""). */
#define ASPOOL_OLD_SIZE 296
#define ASPOOL_MAGIC 0x31415743u    /* "CWA1" */
#define ASPOOL_HDR 8

/* ------------------------------------------------------------- queue */

struct cw_alertq_node {
  struct cw_alertq_node *next;
  cw_alert_event_t ev;
};

static void alertq_init(cw_alertq_t *q, size_t max) {
  q->head = q->tail = NULL;
  q->len = 0;
  q->max = max;
  q->overflow = 0;
  pthread_mutex_init(&q->mu, NULL);
}

static size_t alertq_free(cw_alertq_t *q) {
  size_t left = q->len;
  struct cw_alertq_node *n = q->head;
  while (n) {
    struct cw_alertq_node *x = n->next;
    free(n);
    n = x;
  }
  q->head = q->tail = NULL;
  q->len = 0;
  pthread_mutex_destroy(&q->mu);
  return left;
}

static int alertq_push(cw_alertq_t *q, const cw_alert_event_t *ev, uint64_t *overflow) {
  struct cw_alertq_node *n = malloc(sizeof(*n));
  int rc = 0;
  if (!n) return -ENOMEM;
  n->next = NULL;
  n->ev = *ev;
  pthread_mutex_lock(&q->mu);
  if (q->len >= q->max) {
    *overflow = ++q->overflow;
    rc = -ENOBUFS;
  } else {
    if (q->tail) q->tail->next = n;
    else q->head = n;
    q->tail = n;
    q->len++;
  }
  pthread_mutex_unlock(&q->mu);
  if (rc) free(n);
  return rc;
}

static void alertq_requeue(cw_alertq_t *q, const cw_alert_event_t *v, size_t n) {
  struct cw_alertq_node *head = NULL, *last = NULL;
  size_t k = 0;
  for (; k < n; k++) {
    struct cw_alertq_node *x = malloc(sizeof(*x));
    if (!x) break;
    x->ev = v[k];
    x->next = NULL;
    if (last) last->next = x;
    else head = x;
    last = x;
  }
  pthread_mutex_lock(&q->mu);
  if (head) {
    last->next = q->head;
    if (!q->head) q->tail = last;
    q->head = head;
    q->len += k;
  }
  q->overflow += n - k;
  pthread_mutex_unlock(&q->mu);
}

static size_t alertq_take(cw_alertq_t *q, cw_alert_event_t **out, size_t max) {
  size_t n = 0;
  pthread_mutex_lock(&q->mu);
  size_t want = q->len < max ? q->len : max;
  cw_alert_event_t *v = want ? malloc(want * sizeof(*v)) : NULL;
  while (v && n < want) {
    struct cw_alertq_node *x = q->head;
    q->head = x->next;
    if (!q->head) q->tail = NULL;
    q->len--;
    v[n++] = x->ev;
    free(x);
  }
  pthread_mutex_unlock(&q->mu);
  *out = v;
  return n;
}

static int alertq_empty(cw_alertq_t *q) {
  pthread_mutex_lock(&q->mu);
  int e = q->len == 0;
  pthread_mutex_unlock(&q->mu);
  return e;
}

/* ------------------------------------------------------------- spool */

void cw__spool_damage(cw_spool_t *s, uint64_t *seen, const char *what, const char *dir) {
  cw_spool_stats_t st;
  cw_spool_stats(s, &st);
  if (st.torn == *seen) return;
  cw_log(CW_LOG_ERROR,
         "writer: %s spool in %s: %llu damaged record(s) or torn tail(s) detected (CRC or framing) "
         "and skipped; the intact records replay",
         what, dir, (unsigned long long)(st.torn - *seen));
  *seen = st.torn;
}

uint64_t cw__walerts_spool_bytes(cw_walerts_t *a) {
  cw_spool_stats_t st = {0};
  if (a->spool) cw_spool_stats(a->spool, &st);
  return st.bytes;
}

int cw__walerts_open(cw_walerts_t *a, const cw_env_t *env, const char *path, uint64_t segment) {
  memset(a, 0, sizeof *a);
  /* the queue first: it exists even if the spool does not open */
  a->env = env;
  alertq_init(&a->q, ALERT_QUEUE_MAX);
  return cw_spool_open(&a->spool, path, env->cfg->spool_max_bytes, segment);
}

void cw__walerts_close(cw_walerts_t *a) {
  if (!a->env) return;
  if (a->spool) cw_spool_close(a->spool);
  a->spool = NULL;
  size_t left = alertq_free(&a->q);
  if (left) cw_log(CW_LOG_ERROR, "writer: %zu alert events queued after stop were not stored", left);
}

int cw__walerts_push(cw_walerts_t *a, const cw_alert_event_t *ev) {
  uint64_t over = 0;
  int rc = alertq_push(&a->q, ev, &over);
  if (rc == -ENOBUFS && over % 1000 == 1)
    /* Only when the writer thread is stuck: the event is still in the alert
     * log and on MQTT. Said once per 1000. */
    cw_log(CW_LOG_ERROR, "writer: alert queue full (%d): %llu events not stored in the database",
           ALERT_QUEUE_MAX, (unsigned long long)over);
  return rc;
}

int cw__walerts_pending(cw_walerts_t *a) { return !alertq_empty(&a->q); }

/* ------------------------------------------------------------- store */

/* Store events; on a temporary error put them in the alert spool (they are
 * then replayed before anything newer). Returns 1 when the events are
 * stored or spooled, 0 when they went back to the in-memory queue (the
 * spool refused them too: try again later). */
static int store_or_spool(cw_walerts_t *a, cw_wdb_t *db, const cw_alert_event_t *v, size_t n) {
  int tried = cw__wdb_usable(db, cw_mono_ms());
  int st = tried ? cw__wdb_store_alerts(db, v, n) : CW_WDB_TEMP;
  if (st == CW_WDB_OK) {
    atomic_fetch_add(&a->env->m->alerts_stored, n);
    return 1;
  }
  if (tried) cw__wdb_down(db, "alerts");
  int rc = -ENOMEM;
  uint8_t *rec = malloc(ASPOOL_HDR + n * sizeof(*v));
  if (rec) {
    uint32_t hdr[2] = {ASPOOL_MAGIC, (uint32_t)sizeof(*v)};
    memcpy(rec, hdr, ASPOOL_HDR);
    memcpy(rec + ASPOOL_HDR, v, n * sizeof(*v));
    rc = cw_spool_append(a->spool, rec, ASPOOL_HDR + n * sizeof(*v));
    free(rec);
  }
  if (rc) {
    int64_t now = cw_mono_ms();
    if (now >= a->next_log_ms) {
      cw_log(CW_LOG_ERROR, "writer: cannot spool %zu alert events (%s); keeping them in memory", n,
             strerror(-rc));
      a->next_log_ms = now + 10000;
    }
    alertq_requeue(&a->q, v, n);
    return 0;
  }
  return 1;
}

/* Alert spool first (older), then the in-memory queue. While the database is
 * unusable the queue is moved to the spool so it survives a restart. */
void cw__walerts_pump(cw_walerts_t *a, cw_wdb_t *db) {
  const void *data;
  size_t len;
  while (cw__wdb_usable(db, cw_mono_ms()) && cw_spool_peek(a->spool, &data, &len) == 1) {
    uint32_t hdr[2] = {0, 0};
    cw__spool_damage(a->spool, &a->torn_seen, "alert", a->env->cfg->spool_dir);
    if (len >= ASPOOL_HDR) memcpy(hdr, data, ASPOOL_HDR);
    size_t esz = hdr[1] == ASPOOL_OLD_SIZE ? ASPOOL_OLD_SIZE : sizeof(cw_alert_event_t);
    if (hdr[0] != ASPOOL_MAGIC || hdr[1] != esz || (len - ASPOOL_HDR) % esz) {
      cw_log(CW_LOG_ERROR, "writer: dropping an alert spool record of another build (%zu bytes)", len);
      cw_spool_ack(a->spool);
      continue;
    }
    size_t n = (len - ASPOOL_HDR) / esz;
    cw_alert_event_t *v = calloc(n ? n : 1, sizeof(*v));
    if (!v) return;
    /* copied out: spool bytes carry no alignment; the old layout is a prefix */
    for (size_t i = 0; i < n; i++) memcpy(&v[i], (const uint8_t *)data + ASPOOL_HDR + i * esz, esz);
    int st = cw__wdb_store_alerts(db, v, n);
    free(v);
    if (st != CW_WDB_OK) {
      cw__wdb_down(db, "alert replay");
      break;
    }
    atomic_fetch_add(&a->env->m->alerts_stored, n);
    cw_spool_ack(a->spool);
  }
  cw__spool_damage(a->spool, &a->torn_seen, "alert", a->env->cfg->spool_dir); /* also a damaged tail with no intact record left */
  while (!alertq_empty(&a->q)) {
    cw_alert_event_t *v;
    size_t n = alertq_take(&a->q, &v, ALERT_TXN_MAX);
    if (!n) break;
    int done = store_or_spool(a, db, v, n);
    free(v);
    if (!done) break; /* neither stored nor spooled: try again on a later pass */
  }
  if (cw_mono_ms() >= a->next_gauge_ms && cw__wdb_usable(db, cw_mono_ms())) {
    a->next_gauge_ms = cw_mono_ms() + ALERT_GAUGE_MS;
    (void)cw__wdb_alerts_open(db, a->env->m);
  }
}

