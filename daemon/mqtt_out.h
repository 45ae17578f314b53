/* mqtt_out.h - the alert publisher: a second MQTT client
 * ("<client_id>-pub"), so an alert never queues behind ingest
 * backpressure. Publishes are buffered by paho while the broker is away
 * and kept in its outbox ({spool_dir}/mqtt-out, paho file persistence)
 * until the broker acknowledges them (PUBACK): they survive a restart and
 * are sent again, in order, before anything new. At start the retained
 * alert topics are reconciled with the database (cw_mqtt_out_reconcile). */
#ifndef CW_MQTT_OUT_H
#define CW_MQTT_OUT_H

#include <stddef.h>
#include <uv.h>

#include "env.h"

typedef struct cw_mqtt_out cw_mqtt_out_t;

int cw_mqtt_out_create(const cw_env_t *env, uv_loop_t *loop, cw_mqtt_out_t **out);
int cw_mqtt_out_start(cw_mqtt_out_t *m); /* connect (async, auto-reconnect) */
/* Publish QoS 1 (retained if asked). Main loop. 0 or -EIO. */
int cw_mqtt_out_publish(cw_mqtt_out_t *m, const char *topic, const void *payload, size_t len,
                        int retain);
/* The retained state the broker should hold: one (topic, payload) per alert
 * not closed (copied). Once connected, the publisher reads every retained
 * message under {topic_prefix}/# for RECONCILE_WAIT_MS, clears the topics not
 * in this list and publishes the listed ones, except topics it published
 * itself since start (newer). Main loop. */
typedef struct cw_retained {
  char topic[256];
  char payload[1024];
  size_t len;
} cw_retained_t;
void cw_mqtt_out_reconcile(cw_mqtt_out_t *m, const cw_retained_t *want, size_t n);
/* Main loop, every tick: drives the reconciliation. 1 while it is pending. */
int cw_mqtt_out_tick(cw_mqtt_out_t *m, int64_t now_ms);
void cw_mqtt_out_stop(cw_mqtt_out_t *m); /* let queued publishes out (bounded), disconnect */
void cw_mqtt_out_free(cw_mqtt_out_t *m); /* closes its loop handle (uv_run to finish) */

#endif
