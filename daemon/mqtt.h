/* mqtt.h - the daemon's two MQTT clients (Paho MQTTAsync): the ingest
 * client and the alert publisher. The ingest client hands every message to
 * callbacks main.c wires: telemetry to deliver (a pipeline's ingest), the
 * command topic to command (control). It knows no other part. */
#ifndef CW_MQTT_H
#define CW_MQTT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "env.h"

typedef struct cw_mqtt cw_mqtt_t;

typedef struct cw_mqtt_cfg {
  const cw_env_t *env;
  uv_loop_t *loop; /* connect retry timer; may be NULL */
  /* Paho's receive thread, with paho's lock held: store the message and
   * return (waiting while full is allowed: backpressure). Returning lets
   * paho acknowledge the message. */
  int (*deliver)(void *ctx, const char *topic, size_t topic_len, const void *payload, size_t len,
                 int64_t recv_ms);
  void *deliver_ctx;
  /* Paho's receive thread: a message on cmd_topic (payload not NUL-terminated). */
  void (*command)(void *ctx, const char *payload, size_t len);
  void *command_ctx;
} cw_mqtt_cfg_t;

int cw_mqtt_create(const cw_mqtt_cfg_t *cfg, cw_mqtt_t **out);
int cw_mqtt_start(cw_mqtt_t *m); /* connect + subscribe (async, auto-reconnect) */
/* Publish QoS 1 (retained if asked). Safe from the main loop. 0 or -EIO. */
int cw_mqtt_publish(cw_mqtt_t *m, const char *topic, const void *payload, size_t len, int retain);
void cw_mqtt_pause(cw_mqtt_t *m); /* stop consuming, keep session (SIGTERM) */
void cw_mqtt_stop(cw_mqtt_t *m);  /* pause, then let queued publishes out (bounded) */
void cw_mqtt_free(cw_mqtt_t *m);  /* closes its loop handle (uv_run to finish) */

#endif
