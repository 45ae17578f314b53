/* mqtt_out.h - the alert publisher: a second MQTT client
 * ("<client_id>-pub"), so an alert never queues behind ingest
 * backpressure. Publishes are buffered by paho while the broker is away. */
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
void cw_mqtt_out_stop(cw_mqtt_out_t *m); /* let queued publishes out (bounded), disconnect */
void cw_mqtt_out_free(cw_mqtt_out_t *m); /* closes its loop handle (uv_run to finish) */

#endif
