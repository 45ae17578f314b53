/* mqtt_out.c - the alert publisher (mqtt_out.h). */
#include <MQTTAsync.h>
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_client.h"
#include "mqtt_out.h"

#define PUB_MAX_BUFFERED 100000 /* alerts kept while the broker is away */
#define STOP_WAIT_MS 3000
#define RECONCILE_WAIT_MS 2000 /* retained messages arrive right after SUBACK */

typedef struct topics {
  char **v;
  size_t n, cap;
} topics_t;

static int topics_add(topics_t *t, const char *s, size_t len) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    char **v = realloc(t->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  if (!(t->v[t->n] = strndup(s, len))) return -ENOMEM;
  t->n++;
  return 0;
}
static int topics_has(const topics_t *t, const char *s) {
  for (size_t i = 0; i < t->n; i++)
    if (!strcmp(t->v[i], s)) return 1;
  return 0;
}
static void topics_free(topics_t *t) {
  for (size_t i = 0; i < t->n; i++) free(t->v[i]);
  free(t->v);
  *t = (topics_t){0};
}

enum { REC_IDLE, REC_WANTED, REC_SUBSCRIBING, REC_COLLECTING, REC_DONE };

struct cw_mqtt_out {
  const cw_env_t *env;
  cw_mqtt_client_t cl;
  char persist[600];
  char filter[200];
  /* reconciliation: state and want on the main loop, seen under mu (paho) */
  _Atomic int rec;
  int64_t rec_at;
  cw_retained_t *want;
  size_t nwant;
  topics_t live;  /* retained topics published since start (main loop) */
  pthread_mutex_t mu;
  topics_t seen;  /* retained topics the broker holds (paho's thread) */
};

static void on_connected(void *ctx, char *cause) {
  cw_mqtt_out_t *m = ctx;
  (void)cause;
  cw_mqtt_client_connected(&m->cl);
  atomic_store(&m->env->m->alert_pub_connected, 1);
  cw_log(CW_LOG_DEBUG, "mqtt: alert publisher connected");
}

static void on_lost(void *ctx, char *cause) {
  cw_mqtt_out_t *m = ctx;
  atomic_store(&m->env->m->alert_pub_connected, 0);
  cw_log(CW_LOG_WARN, "mqtt: alert publisher lost its connection (%s)", cause ? cause : "");
  MQTTAsync_free(cause);
}

/* "topic id state" of a retained alert message, for comparing the broker's
 * copy with the database's (only the id and the state matter). */
static void state_key(char *out, size_t cap, const char *topic, size_t tlen, const char *p,
                      size_t len) {
  char buf[1100];
  snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), p);
  const char *id = strstr(buf, "\"id\":"), *st = strstr(buf, "\"state\":\"");
  long long v = id ? strtoll(id + 5, NULL, 10) : 0;
  int sl = st ? (int)strcspn(st + 9, "\"") : 0;
  snprintf(out, cap, "%.*s %lld %.*s", (int)tlen, topic, v, sl, st ? st + 9 : "");
}

/* Only the reconciliation subscribes: collect the retained messages. */
static int no_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
  cw_mqtt_out_t *m = ctx;
  if (msg->retained && msg->payloadlen > 0 && atomic_load(&m->rec) == REC_COLLECTING) {
    char key[600];
    state_key(key, sizeof key, topic, topic_len > 0 ? (size_t)topic_len : strlen(topic),
              msg->payload, (size_t)msg->payloadlen);
    pthread_mutex_lock(&m->mu);
    topics_add(&m->seen, key, strlen(key));
    pthread_mutex_unlock(&m->mu);
  }
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  return 1;
}

int cw_mqtt_out_create(const cw_env_t *env, uv_loop_t *loop, cw_mqtt_out_t **out) {
  cw_mqtt_out_t *m = calloc(1, sizeof *m);
  char id[80];
  int rc;
  if (!m) return -ENOMEM;
  m->env = env;
  m->cl.quiet = 1; /* the ingest client says when the broker is away */
  snprintf(id, sizeof id, "%s-pub", env->cfg->mqtt_client_id);
  snprintf(m->persist, sizeof m->persist, "%s/mqtt-out", env->cfg->spool_dir);
  snprintf(m->filter, sizeof m->filter, "%s/#", env->cfg->alert_topic_prefix);
  m->cl.persist_dir = m->persist; /* the outbox: unacknowledged publishes survive a restart */
  pthread_mutex_init(&m->mu, NULL);
  MQTTAsync_createOptions po = MQTTAsync_createOptions_initializer;
  po.sendWhileDisconnected = 1;
  po.allowDisconnectedSendAtAnyTime = 1;
  po.maxBufferedMessages = PUB_MAX_BUFFERED;
  po.restoreMessages = 1;
  po.persistQoS0 = 0;
  if ((rc = cw_mqtt_client_init(&m->cl, env, loop, m, id, "alert publisher", &po))) {
    free(m);
    return rc;
  }
  MQTTAsync_setCallbacks(m->cl.c, m, on_lost, no_message, NULL);
  MQTTAsync_setConnected(m->cl.c, m, on_connected);
  *out = m;
  return 0;
}

int cw_mqtt_out_start(cw_mqtt_out_t *m) { return cw_mqtt_client_start(&m->cl); }

static void on_pub_ok(void *ctx, MQTTAsync_successData *r) {
  cw_mqtt_out_t *m = ctx;
  (void)r;
  atomic_fetch_add_explicit(&m->env->m->alerts_published, 1, memory_order_relaxed);
}
static void on_pub_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)ctx;
  cw_log(CW_LOG_WARN, "mqtt: alert publish failed: %s (%d)", r && r->message ? r->message : "",
         r ? r->code : 0);
}

int cw_mqtt_out_publish(cw_mqtt_out_t *m, const char *topic, const void *payload, size_t len,
                        int retain) {
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  msg.payload = (void *)payload; /* paho copies it */
  msg.payloadlen = (int)len;
  msg.qos = 1;
  msg.retained = retain ? 1 : 0;
  o.onSuccess = on_pub_ok;
  o.onFailure = on_pub_fail;
  o.context = m;
  if (retain && atomic_load(&m->rec) != REC_DONE && !topics_has(&m->live, topic))
    topics_add(&m->live, topic, strlen(topic)); /* newer than what the reconciliation knows */
  int rc = MQTTAsync_sendMessage(m->cl.c, topic, &msg, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    cw_log(CW_LOG_ERROR, "mqtt: publish to %s refused: error %d", topic, rc);
    return -EIO;
  }
  return 0;
}

void cw_mqtt_out_reconcile(cw_mqtt_out_t *m, const cw_retained_t *want, size_t n) {
  free(m->want);
  m->want = n ? malloc(n * sizeof *want) : NULL;
  m->nwant = m->want ? n : 0;
  if (m->want) memcpy(m->want, want, n * sizeof *want);
  atomic_store(&m->rec, REC_WANTED);
}

static void on_rec_sub(void *ctx, MQTTAsync_successData *r) {
  (void)r;
  atomic_store(&((cw_mqtt_out_t *)ctx)->rec, REC_COLLECTING);
}
static void on_rec_sub_fail(void *ctx, MQTTAsync_failureData *r) {
  cw_mqtt_out_t *m = ctx;
  cw_log(CW_LOG_WARN, "mqtt: cannot read the retained alerts (%s): not reconciled",
         r && r->message ? r->message : "subscription refused");
  atomic_store(&m->rec, REC_DONE);
}

static void reconcile(cw_mqtt_out_t *m) {
  int retain = m->env->cfg->alert_retain;
  size_t cleared = 0, set = 0, kept = 0, same = 0;
  MQTTAsync_unsubscribe(m->cl.c, m->filter, NULL);
  pthread_mutex_lock(&m->mu);
  topics_t seen = m->seen;
  m->seen = (topics_t){0};
  pthread_mutex_unlock(&m->mu);
  atomic_store(&m->rec, REC_DONE); /* from here on publishes are not tracked */
  for (size_t i = 0; i < seen.n; i++) {
    int wanted = 0;
    seen.v[i][strcspn(seen.v[i], " ")] = 0; /* the topic */
    for (size_t k = 0; k < m->nwant && !wanted; k++) wanted = !strcmp(m->want[k].topic, seen.v[i]);
    if (wanted || topics_has(&m->live, seen.v[i])) {
      seen.v[i][strlen(seen.v[i])] = ' ';
      continue;
    }
    cw_mqtt_out_publish(m, seen.v[i], "", 0, 1); /* closed or unknown to the database */
    seen.v[i][strlen(seen.v[i])] = ' ';
    cleared++;
  }
  for (size_t k = 0; retain && k < m->nwant; k++) {
    char key[600];
    if (topics_has(&m->live, m->want[k].topic)) {
      kept++;
      continue;
    }
    state_key(key, sizeof key, m->want[k].topic, strlen(m->want[k].topic), m->want[k].payload,
              m->want[k].len);
    if (topics_has(&seen, key)) { /* the broker already shows this id in this state */
      same++;
      continue;
    }
    cw_mqtt_out_publish(m, m->want[k].topic, m->want[k].payload, m->want[k].len, 1);
    set++;
  }
  cw_log(CW_LOG_INFO,
         "mqtt: retained alerts reconciled with the database: %zu found on the broker, %zu right, "
         "%zu set, %zu cleared, %zu newer since start",
         seen.n, same, set, cleared, kept);
  topics_free(&seen);
  topics_free(&m->live);
  free(m->want);
  m->want = NULL;
  m->nwant = 0;
}

int cw_mqtt_out_tick(cw_mqtt_out_t *m, int64_t now_ms) {
  if (!m) return 0;
  switch (atomic_load(&m->rec)) {
  case REC_WANTED: {
    if (!MQTTAsync_isConnected(m->cl.c)) return 1;
    MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
    o.onSuccess = on_rec_sub;
    o.onFailure = on_rec_sub_fail;
    o.context = m;
    atomic_store(&m->rec, REC_SUBSCRIBING);
    m->rec_at = now_ms;
    /* QoS 0: the retained copies come right after the SUBACK and need no
     * acknowledgement. At QoS 1, alerts published during the window (which
     * the broker also sends back to us) were delayed by up to ~50 ms in 6
     * of 11 starts (bench/alertlat), and a session that died while
     * subscribed would have the broker queue every alert for it. */
    if (MQTTAsync_subscribe(m->cl.c, m->filter, 0, &o) != MQTTASYNC_SUCCESS)
      atomic_store(&m->rec, REC_WANTED); /* next tick */
    return 1;
  }
  case REC_SUBSCRIBING:
    if (now_ms - m->rec_at > 10 * RECONCILE_WAIT_MS) atomic_store(&m->rec, REC_WANTED);
    return 1;
  case REC_COLLECTING:
    if (now_ms - m->rec_at >= RECONCILE_WAIT_MS) reconcile(m);
    return atomic_load(&m->rec) != REC_DONE;
  default: return 0;
  }
}

void cw_mqtt_out_stop(cw_mqtt_out_t *m) {
  if (!m || cw_mqtt_client_pause(&m->cl)) return;
  /* let queued alert publishes go out (bounded) */
  if (MQTTAsync_isConnected(m->cl.c)) cw_mqtt_client_disconnect(&m->cl, 2000, STOP_WAIT_MS);
}

void cw_mqtt_out_free(cw_mqtt_out_t *m) {
  if (!m) return;
  topics_free(&m->live);
  topics_free(&m->seen);
  free(m->want);
  m->want = NULL;
  if (!cw_mqtt_client_release(&m->cl)) free(m);
}
