/* mqtt_in.c - the ingest MQTT client (mqtt_in.h). Paho's receive thread
 * hands every message to the deliver callback (a pipeline, which waits
 * while a ring is full: backpressure reaches the broker through TCP
 * instead of anything being dropped). */
#include <MQTTAsync.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "decode.h"
#include "mqtt_client.h"
#include "mqtt_in.h"

#define PAUSE_WAIT_MS 5000
#define QUIET_MS 100

struct cw_mqtt_in {
  cw_mqtt_in_cfg_t cfg;
  const cw_env_t *env;
  cw_mqtt_client_t cl;
  char (*filter)[CW_TOPIC_MAX_LEN]; /* subscriptions; the command topic last (not for shards) */
  int *qos;
  int nfilter;
  char cmd[CW_TOPIC_MAX_LEN];       /* cmd_topic ("" for a shard) */
  size_t cmd_len;                   /* strlen(cmd), checked per message */
  /* state shared with paho's threads */
  _Atomic int closed;          /* refuse deliveries (the pipeline is stopping) */
  _Atomic int64_t last_msg_ms; /* receive time of the latest delivery */
  _Atomic int in_cb;           /* messageArrived calls in progress */
  _Atomic(cw_journal_t *) journal; /* telemetry appended here first (NULL: none) */
};

/* Paho's receive thread, with paho's lock held: hand over and go.
 * Returning 1 lets paho send the PUBACK: by then the message's readings
 * are in the reading ring (inline) or the message is in an ingest ring. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
  cw_mqtt_in_t *m = ctx;
  size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
  const void *payload = msg->payload;
  size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

  /* seq_cst pair with cw_mqtt_in_pause: either it sees in_cb > 0 and waits
   * for us, or we see closed and leave the message unacknowledged with
   * paho, so the broker delivers it again next session */
  int64_t now = cw_now_ms();
  atomic_fetch_add(&m->in_cb, 1);
  atomic_store_explicit(&m->last_msg_ms, now, memory_order_relaxed);
  if (atomic_load(&m->closed)) {
    atomic_fetch_sub(&m->in_cb, 1);
    return 0;
  }
  if (m->cmd_len && tlen == m->cmd_len && !memcmp(topic, m->cmd, tlen)) {
    if (m->cfg.command) m->cfg.command(m->cfg.command_ctx, payload, plen);
  } else {
    /* the journal first: from here on the message survives our death */
    int64_t jpos = 0;
    cw_journal_t *j = atomic_load_explicit(&m->journal, memory_order_acquire);
    if (j && (jpos = cw_journal_append(j, now, topic, tlen, payload, plen, &m->closed, NULL)) < 0) {
      /* closed while the journal was full, or another process took the
       * journal (its shard's lease): not acknowledged, the broker keeps it */
      if (jpos == -ECANCELED || jpos == -EBUSY) {
        atomic_fetch_sub(&m->in_cb, 1);
        return 0;
      }
      jpos = 0; /* larger than a quarter of the journal: in memory only, as without one */
    }
    atomic_fetch_add_explicit(&m->env->m->msgs_received, 1, memory_order_relaxed);
    cw_msg_t cm = {topic, tlen, payload, plen, now, jpos};
    int rc = m->cfg.deliver(m->cfg.deliver_ctx, &cm);
    if (rc < 0) cw_log(CW_LOG_ERROR, "mqtt: ingest: %s", strerror(-rc));
  }
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  atomic_fetch_sub(&m->in_cb, 1);
  return 1;
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *r) {
  cw_mqtt_in_t *m = ctx;
  (void)r;
  cw_log(CW_LOG_INFO, "mqtt: %s subscribed to %s ... %s (%d filters)", m->cl.id, m->filter[0],
         m->filter[m->nfilter - 1], m->nfilter);
}

static void subscribe(cw_mqtt_in_t *m);

/* A refused SUBSCRIBE (nats-server refuses new QoS 1 subscriptions while a
 * node is down, docs/SCALING.md) is sent again while connected. */
static void on_sub_fail(void *ctx, MQTTAsync_failureData *r) {
  cw_mqtt_in_t *m = ctx;
  cw_log(CW_LOG_ERROR, "mqtt: %s subscribe failed: %s (%d)", m->cl.id,
         r && r->message ? r->message : "", r ? r->code : 0);
  if (m->cfg.shard >= 0 && MQTTAsync_isConnected(m->cl.c) && !atomic_load(&m->cl.paused)) {
    cw_sleep_ms(1000);
    subscribe(m);
  }
}

static void subscribe(cw_mqtt_in_t *m) {
  char *f[m->nfilter];
  for (int i = 0; i < m->nfilter; i++) f[i] = m->filter[i];
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  o.onSuccess = on_sub_ok;
  o.onFailure = on_sub_fail;
  o.context = m;
  int rc = MQTTAsync_subscribeMany(m->cl.c, m->nfilter, f, m->qos, &o);
  if (rc != MQTTASYNC_SUCCESS) cw_log(CW_LOG_ERROR, "mqtt: subscribe: error %d", rc);
}

/* The filters: socket and station topic (once if equal), for a shard once
 * per partition it owns, then the command topic (not for a shard). */
static int make_filters(cw_mqtt_in_t *m, const cw_topic_t pat[2]) {
  const cw_config_t *cfg = m->env->cfg;
  int shard = m->cfg.shard, nparts = 1, n = 0;
  if (shard >= 0) nparts = cfg->partitions / cfg->shards;
  else if (cfg->shards) nparts = 0; /* [cluster]: telemetry comes through the shard clients */
  int pats = strcmp(cfg->mqtt_topic, cfg->mqtt_station_topic) ? 2 : 1;
  int cap = nparts * pats + 1;
  m->filter = calloc((size_t)cap, sizeof *m->filter);
  m->qos = calloc((size_t)cap, sizeof *m->qos);
  if (!m->filter || !m->qos) return -ENOMEM;
  for (int j = 0; j < nparts; j++) {
    int part = shard >= 0 ? shard + j * cfg->shards : -1;
    for (int i = 0; i < pats; i++) {
      if (cw_topic_filter_partition(&pat[i], part, m->filter[n], sizeof m->filter[n]))
        return -EINVAL;
      m->qos[n++] = cfg->mqtt_qos;
    }
  }
  if (shard < 0) {
    snprintf(m->filter[n], sizeof m->filter[n], "%s", cfg->mqtt_cmd_topic);
    snprintf(m->cmd, sizeof m->cmd, "%s", cfg->mqtt_cmd_topic);
    m->cmd_len = strlen(m->cmd);
    m->qos[n++] = 1;
  }
  m->nfilter = n;
  return 0;
}

/* First connect and every automatic reconnect: the broker keeps a persistent
 * session's subscriptions, but subscribing again costs nothing and covers a
 * broker that lost its state. */
static void on_connected(void *ctx, char *cause) {
  cw_mqtt_in_t *m = ctx;
  (void)cause;
  cw_mqtt_client_connected(&m->cl);
  if (atomic_load(&m->cl.paused)) {
    /* an automatic reconnect that raced the shutdown: leave again */
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnect(m->cl.c, &o);
    return;
  }
  atomic_store(&m->env->m->mqtt_connected, 1);
  cw_log(CW_LOG_INFO, "mqtt: connected to %s as %s", m->env->cfg->mqtt_uri, m->cl.id);
  if (m->cfg.connected) m->cfg.connected(m->cfg.connected_ctx, m->cfg.shard);
  subscribe(m);
}

static void on_lost(void *ctx, char *cause) {
  cw_mqtt_in_t *m = ctx;
  atomic_store(&m->env->m->mqtt_connected, 0);
  if (!atomic_load(&m->cl.paused))
    cw_log(CW_LOG_WARN, "mqtt: %s connection lost (%s); %s", m->cl.id, cause ? cause : "no reason",
           m->cfg.shard >= 0 ? "reconnecting while the lease is held" : "reconnecting");
  MQTTAsync_free(cause);
}

int cw_mqtt_in_create(const cw_mqtt_in_cfg_t *mc, cw_mqtt_in_t **out) {
  cw_mqtt_in_t *m = calloc(1, sizeof *m);
  const cw_config_t *cfg = mc->env->cfg;
  cw_topic_t pat[2]; /* socket topic, station topic */
  int rc;
  if (!m) return -ENOMEM;
  m->cfg = *mc;
  m->env = mc->env;
  char id[80];
  if ((rc = cw_topic_compile(&pat[0], cfg->mqtt_topic)) ||
      (rc = cw_topic_compile(&pat[1], cfg->mqtt_station_topic)) || (rc = make_filters(m, pat))) {
    cw_log(CW_LOG_ERROR, "mqtt: bad topic pattern");
    goto fail;
  }
  if (mc->shard >= 0) snprintf(id, sizeof id, "%s%d", cfg->client_id_prefix, mc->shard);
  else snprintf(id, sizeof id, "%s", cfg->mqtt_client_id);
  m->cl.no_reconnect = mc->shard >= 0;
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  if ((rc = cw_mqtt_client_init(&m->cl, m->env, mc->shard >= 0 ? NULL : mc->loop, m, id,
                                "ingest", &co)))
    goto fail;
  MQTTAsync_setCallbacks(m->cl.c, m, on_lost, on_message, NULL);
  MQTTAsync_setConnected(m->cl.c, m, on_connected);
  *out = m;
  return 0;
fail:
  free(m->filter);
  free(m->qos);
  free(m); /* nothing created: cw_mqtt_client_init fails before its timer */
  return rc;
}

int cw_mqtt_in_start(cw_mqtt_in_t *m) { return cw_mqtt_client_start(&m->cl); }

int cw_mqtt_in_up(cw_mqtt_in_t *m) {
  return atomic_load(&m->cl.connecting) || MQTTAsync_isConnected(m->cl.c);
}

int cw_mqtt_in_connect(cw_mqtt_in_t *m) {
  if (atomic_load(&m->cl.paused) || cw_mqtt_in_up(m)) return 0;
  return cw_mqtt_client_start(&m->cl); /* no retry timer for a shard: the lease retries */
}

void cw_mqtt_in_drop(cw_mqtt_in_t *m) {
  /* without unsubscribing or cleaning: the next owner gets the session */
  cw_mqtt_client_disconnect(&m->cl, 0, 2000);
  cw_log(CW_LOG_INFO, "mqtt: %s disconnected", m->cl.id);
}

void cw_mqtt_in_pause(cw_mqtt_in_t *m) {
  if (!m || cw_mqtt_client_pause(&m->cl)) return;
  /* Disconnect without unsubscribing: the session (clean session off) and
   * its subscriptions stay on the broker, which queues what arrives
   * meanwhile. Messages paho has already passed to on_message are in a
   * ring: ours. */
  cw_mqtt_client_disconnect(&m->cl, 1000, PAUSE_WAIT_MS);
  /* paho may PUBACK a message when it reads it and hand it to on_message a
   * little later, so keep taking deliveries until it has been quiet for
   * QUIET_MS (the workers still drain the rings meanwhile), then close */
  for (int i = 0; i < PAUSE_WAIT_MS / 5; i++) {
    int64_t quiet = cw_now_ms() - atomic_load_explicit(&m->last_msg_ms, memory_order_relaxed);
    if (!atomic_load(&m->in_cb) && quiet >= QUIET_MS) break;
    cw_sleep_ms(5);
  }
  atomic_store(&m->closed, 1);
  for (int i = 0; i < PAUSE_WAIT_MS / 5 && atomic_load(&m->in_cb); i++) cw_sleep_ms(5);
  atomic_store(&m->env->m->mqtt_connected, 0);
  cw_log(CW_LOG_INFO, "mqtt: stopped consuming; the broker keeps the session");
}

int64_t cw_mqtt_in_stalled_ms(cw_mqtt_in_t *m, int64_t now_ms) {
  if (!m || !atomic_load(&m->in_cb)) return 0;
  return now_ms - atomic_load_explicit(&m->last_msg_ms, memory_order_relaxed);
}

void cw_mqtt_in_journal(cw_mqtt_in_t *m, cw_journal_t *j) {
  atomic_store_explicit(&m->journal, j, memory_order_release); /* pairs with on_message */
}

void cw_mqtt_in_free(cw_mqtt_in_t *m) {
  if (!m) return;
  free(m->filter);
  free(m->qos);
  if (!cw_mqtt_client_release(&m->cl)) free(m);
}
