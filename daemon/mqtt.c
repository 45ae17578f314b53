/* mqtt.c - the daemon's two MQTT clients (Paho MQTTAsync). The ingest client
 * holds a persistent session (fixed client id, clean session off, QoS 1) and
 * copies every message into the owning worker's ingest ring from paho's
 * receive thread, waiting when the ring is full: backpressure reaches the
 * broker through TCP instead of anything being dropped. A second client
 * ("<client_id>-pub") publishes alerts, so an alert never queues behind
 * ingest backpressure. Messages leave through the callbacks of mqtt.h. */
#include <MQTTAsync.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "mqtt.h"

#define PUB_MAX_BUFFERED 100000 /* alerts kept while the broker is away */
#define PAUSE_WAIT_MS 5000
#define QUIET_MS 100

struct cw_mqtt {
  cw_mqtt_cfg_t cfg;
  const cw_env_t *env;
  MQTTAsync in, pub;
  int in_created, pub_created;
  char filter[3][CW_TOPIC_MAX_LEN]; /* + cmd_topic */
  size_t cmd_len;                   /* strlen(filter[2]), checked per message */
  char password[256];
  char pub_id[80];
  /* state shared with paho's threads */
  _Atomic int paused;      /* SIGTERM: no reconnects, no new connects */
  _Atomic int closed;      /* rings closed (workers stopping): refuse deliveries */
  _Atomic int64_t last_msg_ms; /* receive time of the latest delivery */
  _Atomic int in_cb;       /* messageArrived calls in progress */
  _Atomic int disc_done;   /* ingest disconnect finished (pause) */
  _Atomic int connecting;  /* an ingest connect is outstanding */
  _Atomic int ever_connected; /* paho reconnects by itself after the first success */
  _Atomic int pub_connecting, pub_ever; /* the same for the publisher */
  /* main loop */
  uv_timer_t retry;        /* initial connect retries with capped backoff */
  int handles_open;
  int64_t next_try_ms;
  int backoff_s;
};

/* ------------------------------------------------------------- receive */

/* Paho's receive thread, with paho's lock held: copy into a ring and go.
 * Returning 1 lets paho send the PUBACK: by then the message is in a ring. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
  cw_mqtt_t *m = ctx;
  size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
  const void *payload = msg->payload;
  size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

  /* seq_cst pair with cw_mqtt_pause: either it sees in_cb > 0 and waits for
   * us, or we see closed and leave the message unacknowledged with paho, so
   * the broker delivers it again next session */
  int64_t now = cw_now_ms();
  atomic_fetch_add(&m->in_cb, 1);
  atomic_store_explicit(&m->last_msg_ms, now, memory_order_relaxed);
  if (atomic_load(&m->closed)) {
    atomic_fetch_sub(&m->in_cb, 1);
    return 0;
  }
  if (tlen == m->cmd_len && !memcmp(topic, m->filter[2], tlen)) {
    if (m->cfg.command) m->cfg.command(m->cfg.command_ctx, payload, plen);
    goto done;
  }
  atomic_fetch_add_explicit(&m->env->m->msgs_received, 1, memory_order_relaxed);
  int rc = m->cfg.deliver(m->cfg.deliver_ctx, topic, tlen, payload, plen, now);
  if (rc < 0) cw_log(CW_LOG_ERROR, "mqtt: ingest ring push: %s", strerror(-rc));
done:
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  atomic_fetch_sub(&m->in_cb, 1);
  return 1;
}

/* ------------------------------------------------------------- connection */

static void on_sub_ok(void *ctx, MQTTAsync_successData *r) {
  cw_mqtt_t *m = ctx;
  (void)r;
  cw_log(CW_LOG_INFO, "mqtt: subscribed to %s, %s, %s", m->filter[0], m->filter[1], m->filter[2]);
}
static void on_sub_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)ctx;
  cw_log(CW_LOG_ERROR, "mqtt: subscribe failed: %s (%d)", r && r->message ? r->message : "",
         r ? r->code : 0);
}

static void subscribe(cw_mqtt_t *m) {
  char *f[3] = {m->filter[0], m->filter[1], m->filter[2]};
  int q = m->env->cfg->mqtt_qos;
  int qos[3] = {q, q, 1};
  int n = strcmp(m->filter[0], m->filter[1]) ? 3 : 2;
  if (n == 2) f[1] = m->filter[2], qos[1] = 1;
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  o.onSuccess = on_sub_ok;
  o.onFailure = on_sub_fail;
  o.context = m;
  int rc = MQTTAsync_subscribeMany(m->in, n, f, qos, &o);
  if (rc != MQTTASYNC_SUCCESS) cw_log(CW_LOG_ERROR, "mqtt: subscribe: error %d", rc);
}

/* First connect and every automatic reconnect: the broker keeps a persistent
 * session's subscriptions, but subscribing again costs nothing and covers a
 * broker that lost its state. */
static void on_connected(void *ctx, char *cause) {
  cw_mqtt_t *m = ctx;
  (void)cause;
  atomic_store(&m->connecting, 0);
  atomic_store(&m->ever_connected, 1);
  if (atomic_load(&m->paused)) {
    /* an automatic reconnect that raced the shutdown: leave again */
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnect(m->in, &o);
    return;
  }
  atomic_store(&m->env->m->mqtt_connected, 1);
  cw_log(CW_LOG_INFO, "mqtt: connected to %s as %s", m->env->cfg->mqtt_uri, m->env->cfg->mqtt_client_id);
  subscribe(m);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r) {
  cw_mqtt_t *m = ctx;
  atomic_store(&m->connecting, 0);
  cw_log(CW_LOG_WARN, "mqtt: connect to %s failed: %s (%d); retrying", m->env->cfg->mqtt_uri,
         r && r->message ? r->message : "no answer", r ? r->code : 0);
}

static void on_pub_connect_fail(void *ctx, MQTTAsync_failureData *r) {
  cw_mqtt_t *m = ctx;
  (void)r;
  atomic_store(&m->pub_connecting, 0);
}

static void on_lost(void *ctx, char *cause) {
  cw_mqtt_t *m = ctx;
  atomic_store(&m->env->m->mqtt_connected, 0);
  if (!atomic_load(&m->paused))
    cw_log(CW_LOG_WARN, "mqtt: connection lost (%s); reconnecting", cause ? cause : "no reason");
  MQTTAsync_free(cause);
}

static void on_pub_connected(void *ctx, char *cause) {
  cw_mqtt_t *m = ctx;
  (void)cause;
  atomic_store(&m->pub_connecting, 0);
  atomic_store(&m->pub_ever, 1);
  cw_log(CW_LOG_DEBUG, "mqtt: alert publisher connected");
}

static void on_pub_lost(void *ctx, char *cause) {
  (void)ctx;
  cw_log(CW_LOG_WARN, "mqtt: alert publisher lost its connection (%s)", cause ? cause : "");
  MQTTAsync_free(cause);
}

static int no_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
  (void)ctx, (void)topic_len;
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  return 1;
}

static int connect_client(cw_mqtt_t *m, MQTTAsync c, int ingest) {
  const cw_config_t *cfg = m->env->cfg;
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
  o.keepAliveInterval = cfg->mqtt_keepalive;
  o.cleansession = 0; /* persistent session: the broker queues while we are away */
  o.automaticReconnect = 1;
  o.minRetryInterval = 1;
  o.maxRetryInterval = cfg->mqtt_reconnect_max_s;
  o.connectTimeout = 10;
  if (cfg->mqtt_username[0]) {
    o.username = cfg->mqtt_username;
    o.password = m->password[0] ? m->password : NULL;
  }
  if (ingest) {
    o.onFailure = on_connect_fail;
    o.context = m;
    atomic_store(&m->connecting, 1);
  } else {
    o.onFailure = on_pub_connect_fail;
    o.context = m;
    atomic_store(&m->pub_connecting, 1);
  }
  int rc = MQTTAsync_connect(c, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    atomic_store(ingest ? &m->connecting : &m->pub_connecting, 0);
    cw_log(CW_LOG_ERROR, "mqtt: connect request failed: error %d", rc);
    return -EIO;
  }
  return 0;
}

/* Main loop, every second: paho's automatic reconnect only takes over after
 * a first successful connect, so the first one is retried here with capped
 * exponential backoff. The publisher follows the same rule. */
static void on_retry(uv_timer_t *t) {
  cw_mqtt_t *m = t->data;
  if (atomic_load(&m->paused)) return;
  int in_due = !atomic_load(&m->ever_connected) && !atomic_load(&m->connecting);
  int pub_due = !atomic_load(&m->pub_ever) && !atomic_load(&m->pub_connecting);
  int64_t now = cw_now_ms();
  if ((!in_due && !pub_due) || now < m->next_try_ms) return;
  m->backoff_s = m->backoff_s ? m->backoff_s * 2 : 1;
  if (m->backoff_s > m->env->cfg->mqtt_reconnect_max_s) m->backoff_s = m->env->cfg->mqtt_reconnect_max_s;
  m->next_try_ms = now + (int64_t)m->backoff_s * 1000;
  if (in_due) connect_client(m, m->in, 1);
  if (pub_due) connect_client(m, m->pub, 0);
}

static int read_password(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "re");
  if (!f) return -errno;
  if (!fgets(out, (int)cap, f)) out[0] = 0;
  fclose(f);
  out[strcspn(out, "\r\n")] = 0;
  return 0;
}

int cw_mqtt_create(const cw_mqtt_cfg_t *mc, cw_mqtt_t **out) {
  cw_mqtt_t *m = calloc(1, sizeof *m);
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
  if (cfg->mqtt_password_file[0] &&
      (rc = read_password(cfg->mqtt_password_file, m->password, sizeof m->password))) {
    cw_log(CW_LOG_ERROR, "mqtt: password_file %s: %s", cfg->mqtt_password_file, strerror(-rc));
    goto fail;
  }
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  rc = MQTTAsync_createWithOptions(&m->in, cfg->mqtt_uri, cfg->mqtt_client_id,
                                   MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
  if (rc != MQTTASYNC_SUCCESS) {
    cw_log(CW_LOG_ERROR, "mqtt: cannot create client for %s: error %d", cfg->mqtt_uri, rc);
    rc = -EINVAL;
    goto fail;
  }
  m->in_created = 1;
  MQTTAsync_setCallbacks(m->in, m, on_lost, on_message, NULL);
  MQTTAsync_setConnected(m->in, m, on_connected);

  snprintf(m->pub_id, sizeof m->pub_id, "%s-pub", cfg->mqtt_client_id);
  MQTTAsync_createOptions po = MQTTAsync_createOptions_initializer;
  po.sendWhileDisconnected = 1;
  po.allowDisconnectedSendAtAnyTime = 1;
  po.maxBufferedMessages = PUB_MAX_BUFFERED;
  rc = MQTTAsync_createWithOptions(&m->pub, cfg->mqtt_uri, m->pub_id, MQTTCLIENT_PERSISTENCE_NONE,
                                   NULL, &po);
  if (rc != MQTTASYNC_SUCCESS) {
    rc = -EINVAL;
    goto fail;
  }
  m->pub_created = 1;
  MQTTAsync_setCallbacks(m->pub, m, on_pub_lost, no_message, NULL);
  MQTTAsync_setConnected(m->pub, m, on_pub_connected);

  if (mc->loop) {
    uv_timer_init(mc->loop, &m->retry);
    m->retry.data = m;
    m->handles_open = 1;
  }
  *out = m;
  return 0;
fail:
  if (m->in_created) MQTTAsync_destroy(&m->in);
  free(m);
  return rc;
}

int cw_mqtt_start(cw_mqtt_t *m) {
  int rc = connect_client(m, m->pub, 0);
  if (connect_client(m, m->in, 1)) rc = -EIO;
  m->backoff_s = 1;
  m->next_try_ms = cw_now_ms() + 1000;
  if (m->handles_open) uv_timer_start(&m->retry, on_retry, 1000, 1000);
  return rc; /* not fatal: the retry timer keeps trying */
}

static void on_pub_ok(void *ctx, MQTTAsync_successData *r) {
  cw_mqtt_t *m = ctx;
  (void)r;
  atomic_fetch_add_explicit(&m->env->m->alerts_published, 1, memory_order_relaxed);
}
static void on_pub_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)ctx;
  cw_log(CW_LOG_WARN, "mqtt: alert publish failed: %s (%d)", r && r->message ? r->message : "",
         r ? r->code : 0);
}

int cw_mqtt_publish(cw_mqtt_t *m, const char *topic, const void *payload, size_t len, int retain) {
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  msg.payload = (void *)payload; /* paho copies it */
  msg.payloadlen = (int)len;
  msg.qos = 1;
  msg.retained = retain ? 1 : 0;
  o.onSuccess = on_pub_ok;
  o.onFailure = on_pub_fail;
  o.context = m;
  int rc = MQTTAsync_sendMessage(m->pub, topic, &msg, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    cw_log(CW_LOG_ERROR, "mqtt: publish to %s refused: error %d", topic, rc);
    return -EIO;
  }
  return 0;
}

static void on_disc(void *ctx, MQTTAsync_successData *r) {
  (void)r;
  atomic_store(&((cw_mqtt_t *)ctx)->disc_done, 1);
}
static void on_disc_fail(void *ctx, MQTTAsync_failureData *r) {
  (void)r;
  atomic_store(&((cw_mqtt_t *)ctx)->disc_done, 1);
}

void cw_mqtt_pause(cw_mqtt_t *m) {
  if (atomic_exchange(&m->paused, 1)) return;
  if (m->handles_open) uv_timer_stop(&m->retry);
  /* Disconnect without unsubscribing: the session (clean session off) and its
   * subscriptions stay on the broker, which queues what arrives meanwhile.
   * Messages paho has already passed to on_message are in a ring: ours. */
  MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
  o.timeout = 1000;
  o.onSuccess = on_disc;
  o.onFailure = on_disc_fail;
  o.context = m;
  if (MQTTAsync_disconnect(m->in, &o) != MQTTASYNC_SUCCESS) atomic_store(&m->disc_done, 1);
  for (int i = 0; i < PAUSE_WAIT_MS / 5 && !atomic_load(&m->disc_done); i++) cw_sleep_ms(5);
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

void cw_mqtt_stop(cw_mqtt_t *m) {
  if (!m) return;
  cw_mqtt_pause(m);
  /* let queued alert publishes go out (bounded) */
  MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
  o.timeout = 2000;
  atomic_store(&m->disc_done, 0);
  o.onSuccess = on_disc;
  o.onFailure = on_disc_fail;
  o.context = m;
  if (MQTTAsync_isConnected(m->pub) && MQTTAsync_disconnect(m->pub, &o) == MQTTASYNC_SUCCESS)
    for (int i = 0; i < 600 && !atomic_load(&m->disc_done); i++) cw_sleep_ms(5);
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void cw_mqtt_free(cw_mqtt_t *m) {
  if (!m) return;
  if (m->in_created) MQTTAsync_destroy(&m->in);
  if (m->pub_created) MQTTAsync_destroy(&m->pub);
  if (m->handles_open) {
    uv_close((uv_handle_t *)&m->retry, on_closed); /* frees m */
    return;
  }
  free(m);
}
