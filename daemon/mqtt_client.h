/* mqtt_client.h - what the ingest client (mqtt_in) and the alert publisher
 * (mqtt_out) share: one Paho MQTTAsync client with the daemon's connect
 * options (keepalive, credentials from [mqtt] password_file, automatic
 * reconnect, persistent session), the first-connect retry with capped
 * exponential back-off that Paho does not do by itself, and a bounded
 * disconnect. The owner keeps the struct and a timer that calls
 * cw_mqtt_client_retry every second. */
#ifndef CW_MQTT_CLIENT_H
#define CW_MQTT_CLIENT_H

#include <MQTTAsync.h>
#include <stdatomic.h>
#include <stdint.h>

#include "env.h"

typedef struct cw_mqtt_client {
  const cw_env_t *env;
  MQTTAsync c;
  int created;
  int quiet;             /* do not log failed connects (the publisher) */
  const char *what;      /* for logs: "ingest", "alert publisher" */
  char id[80];
  char password[256];
  _Atomic int connecting;     /* a connect is outstanding */
  _Atomic int ever_connected; /* paho reconnects by itself after the first success */
  _Atomic int paused;         /* no more connects */
  _Atomic int disc_done;
  int64_t next_try_ms;        /* main loop only */
  int backoff_s;
} cw_mqtt_client_t;

/* Create the client (not connected). 0, -EINVAL or -errno (password_file). */
int cw_mqtt_client_init(cw_mqtt_client_t *cl, const cw_env_t *env, const char *id, const char *what,
                        MQTTAsync_createOptions *co);
int cw_mqtt_client_connect(cw_mqtt_client_t *cl);  /* 0 or -EIO */
void cw_mqtt_client_connected(cw_mqtt_client_t *cl); /* from the connected callback */
void cw_mqtt_client_retry(cw_mqtt_client_t *cl);   /* main loop, every second */
/* Disconnect (timeout_ms for paho) and wait up to wait_ms for it. */
void cw_mqtt_client_disconnect(cw_mqtt_client_t *cl, int timeout_ms, int wait_ms);
void cw_mqtt_client_destroy(cw_mqtt_client_t *cl);

#endif
