/* mqtt_in.c - the ingest MQTT client (mqtt_in.h). Paho's receive thread
 * hands every message to the deliver callback (a pipeline's ingest, which
 * waits while the ring is full: backpressure reaches the broker through TCP
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
  char filter[3][CW_TOPIC_MAX_LEN]; /* socket topic, station topic, cmd_topic */
  size_t cmd_len;                   /* strlen(filter[2]), checked per message */
  /* state shared with paho's threads */
  _Atomic int closed;          /* refuse deliveries (the pipeline is stopping) */
  _Atomic int64_t last_msg_ms; /* receive time of the latest delivery */
  _Atomic int in_cb;           /* messageArrived calls in progress */
};

/* Paho's receive thread, with paho's lock held: hand over and go.
 * Returning 1 lets paho send the PUBACK: by then the message is in a ring. */
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
  if (tlen == m->cmd_len && !memcmp(topic, m->filter[2], tlen)) {
    if (m->cfg.command) m->cfg.command(m->cfg.command_ctx, payload, plen);
  } else {
    atomic_fetch_add_explicit(&m->env->m->msgs_received, 1, memory_order_relaxed);
    int rc = m->cfg.deliver(m->cfg.deliver_ctx, topic, tlen, payload, plen, now);
    if (rc < 0) cw_log(CW_LOG_ERROR, "mqtt: ingest ring push: %s", strerror(-rc));
  }
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  atomic_fetch_sub(&m->in_cb, 1);
  return 1;
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *r) {
  cw_mqtt_in_t *m = ctx;
  (void)r;
  cw_log(CW_LOG_INFO, "mqtt: subscribed to %s, %s, %s", m->filter[0], m->filter[1], m->filter[2]);
}
static void on_sub_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)ctx;
  cw_log(CW_LOG_ERROR, "mqtt: subscribe failed: %s (%d)", r && r->message ? r->message : "",
         r ? r->code : 0);
}

static void subscribe(cw_mqtt_in_t *m) {
  char *f[3] = {m->filter[0], m->filter[1], m->filter[2]};
  int q = m->env->cfg->mqtt_qos;
  int qos[3] = {q, q, 1};
  int n = strcmp(m->filter[0], m->filter[1]) ? 3 : 2;
  if (n == 2) f[1] = m->filter[2], qos[1] = 1;
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  o.onSuccess = on_sub_ok;
  o.onFailure = on_sub_fail;
  o.context = m;
  int rc = MQTTAsync_subscribeMany(m->cl.c, n, f, qos, &o);
  if (rc != MQTTASYNC_SUCCESS) cw_log(CW_LOG_ERROR, "mqtt: subscribe: error %d", rc);
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
  subscribe(m);
}

static void on_lost(void *ctx, char *cause) {
  cw_mqtt_in_t *m = ctx;
  atomic_store(&m->env->m->mqtt_connected, 0);
  if (!atomic_load(&m->cl.paused))
    cw_log(CW_LOG_WARN, "mqtt: connection lost (%s); reconnecting", cause ? cause : "no reason");
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
  if ((rc = cw_topic_compile(&pat[0], cfg->mqtt_topic)) ||
      (rc = cw_topic_compile(&pat[1], cfg->mqtt_station_topic)) ||
      (rc = cw_topic_filter(&pat[0], m->filter[0], sizeof m->filter[0])) ||
      (rc = cw_topic_filter(&pat[1], m->filter[1], sizeof m->filter[1]))) {
    cw_log(CW_LOG_ERROR, "mqtt: bad topic pattern");
    goto fail;
  }
  snprintf(m->filter[2], sizeof m->filter[2], "%s", cfg->mqtt_cmd_topic);
  m->cmd_len = strlen(m->filter[2]);
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  if ((rc = cw_mqtt_client_init(&m->cl, m->env, mc->loop, m, cfg->mqtt_client_id, "ingest", &co)))
    goto fail;
  MQTTAsync_setCallbacks(m->cl.c, m, on_lost, on_message, NULL);
  MQTTAsync_setConnected(m->cl.c, m, on_connected);
  *out = m;
  return 0;
fail:
  free(m); /* nothing created: cw_mqtt_client_init fails before its timer */
  return rc;
}

int cw_mqtt_in_start(cw_mqtt_in_t *m) { return cw_mqtt_client_start(&m->cl); }

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

void cw_mqtt_in_free(cw_mqtt_in_t *m) {
  if (m && !cw_mqtt_client_release(&m->cl)) free(m);
}
