/* alertq.c - the bounded FIFO that hands alert events from the main loop to
 * the writer thread. A mutex is enough: alert events are rare next to
 * readings. At the bound (only reached if the writer thread itself is stuck)
 * events are counted, not queued; they are already in the alert log and on
 * MQTT. */
#include <errno.h>
#include <stdlib.h>

#include "writer_int.h"

struct cw_alertq_node {
  struct cw_alertq_node *next;
  cw_alert_event_t ev;
};

void cw__alertq_init(cw_alertq_t *q, size_t max) {
  q->head = q->tail = NULL;
  q->len = 0;
  q->max = max;
  q->overflow = 0;
  pthread_mutex_init(&q->mu, NULL);
}

size_t cw__alertq_free(cw_alertq_t *q) {
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

int cw__alertq_push(cw_alertq_t *q, const cw_alert_event_t *ev, uint64_t *overflow) {
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

void cw__alertq_requeue(cw_alertq_t *q, const cw_alert_event_t *v, size_t n) {
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

size_t cw__alertq_take(cw_alertq_t *q, cw_alert_event_t **out, size_t max) {
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

int cw__alertq_empty(cw_alertq_t *q) {
  pthread_mutex_lock(&q->mu);
  int e = q->len == 0;
  pthread_mutex_unlock(&q->mu);
  return e;
}
