/* mqtt_out.c - the alert publisher (mqtt_out.h). */
#include <MQTTAsync.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "mqtt_client.h"
#include "mqtt_out.h"

#define PUB_MAX_BUFFERED 100000 /* alerts kept while the broker is away */
#define STOP_WAIT_MS 3000

struct cw_mqtt_out {
  const cw_env_t *env;
  cw_mqtt_client_t cl;
};

static void on_connected(void *ctx, char *cause) {
  cw_mqtt_out_t *m = ctx;
  (void)cause;
  cw_mqtt_client_connected(&m->cl);
  cw_log(CW_LOG_DEBUG, "mqtt: alert publisher connected");
}

static void on_lost(void *ctx, char *cause) {
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

int cw_mqtt_out_create(const cw_env_t *env, uv_loop_t *loop, cw_mqtt_out_t **out) {
  cw_mqtt_out_t *m = calloc(1, sizeof *m);
  char id[80];
  int rc;
  if (!m) return -ENOMEM;
  m->env = env;
  m->cl.quiet = 1; /* the ingest client says when the broker is away */
  snprintf(id, sizeof id, "%s-pub", env->cfg->mqtt_client_id);
  MQTTAsync_createOptions po = MQTTAsync_createOptions_initializer;
  po.sendWhileDisconnected = 1;
  po.allowDisconnectedSendAtAnyTime = 1;
  po.maxBufferedMessages = PUB_MAX_BUFFERED;
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
  int rc = MQTTAsync_sendMessage(m->cl.c, topic, &msg, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    cw_log(CW_LOG_ERROR, "mqtt: publish to %s refused: error %d", topic, rc);
    return -EIO;
  }
  return 0;
}

void cw_mqtt_out_stop(cw_mqtt_out_t *m) {
  if (!m || cw_mqtt_client_pause(&m->cl)) return;
  /* let queued alert publishes go out (bounded) */
  if (MQTTAsync_isConnected(m->cl.c)) cw_mqtt_client_disconnect(&m->cl, 2000, STOP_WAIT_MS);
}

void cw_mqtt_out_free(cw_mqtt_out_t *m) {
  if (m && !cw_mqtt_client_release(&m->cl)) free(m);
}
