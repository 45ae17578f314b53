/* mqtt_client.h - what the ingest client (mqtt_in) and the alert publisher
 * (mqtt_out) share: one Paho MQTTAsync client with the daemon's connect
 * options (keepalive, credentials from [mqtt] password_file, automatic
 * reconnect, persistent session), the first-connect retry with capped
 * exponential back-off that Paho does not do by itself, and a bounded
 * disconnect. The struct lives inside its owner (mqtt_in, mqtt_out); its
 * retry timer, on the main loop, frees the owner when it closes. */
#ifndef CW_MQTT_CLIENT_H
#define CW_MQTT_CLIENT_H

#include <MQTTAsync.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "env.h"

typedef struct cw_mqtt_client {
  const cw_env_t *env;
  MQTTAsync c;
  int created;
  int quiet;             /* do not log failed connects (the publisher) */
  int no_reconnect;      /* no automatic reconnect (a shard: only its lease holder reconnects) */
  const char *what;      /* for logs: "ingest", "alert publisher" */
  char id[80];
  char uris[256];        /* [mqtt] uri, split at ',' into uri_v */
  char *uri_v[8];
  int nuris;
  char password[256];
  char keypass[256];          /* [mqtt] keyfile_password_file */
  MQTTAsync_SSLOptions ssl;   /* ssl:// and mqtts:// */
  int tls;
  _Atomic int connecting;     /* a connect is outstanding */
  _Atomic int ever_connected; /* paho reconnects by itself after the first success */
  _Atomic int paused;         /* no more connects */
  _Atomic int disc_done;
  int64_t next_try_ms;        /* main loop only */
  int backoff_s;
  uv_timer_t retry;           /* first-connect retries, every second */
  int timer_open;
  void *owner;                /* freed when the timer has closed */
  const char *persist_dir;    /* set before init: paho file persistence there (NULL: none) */
} cw_mqtt_client_t;

/* Create the client (not connected); loop may be NULL (no retry timer).
 * 0, -EINVAL or -errno (password_file). */
int cw_mqtt_client_init(cw_mqtt_client_t *cl, const cw_env_t *env, uv_loop_t *loop, void *owner,
                        const char *id, const char *what, MQTTAsync_createOptions *co);
/* First connect, then the retry timer. 0 or -EIO (not fatal: it retries). */
int cw_mqtt_client_start(cw_mqtt_client_t *cl);
void cw_mqtt_client_connected(cw_mqtt_client_t *cl); /* from the connected callback */
/* No more connects (the retry timer stops); 1 if it was already so. */
int cw_mqtt_client_pause(cw_mqtt_client_t *cl);
/* Disconnect (timeout_ms for paho) and wait up to wait_ms for it. */
void cw_mqtt_client_disconnect(cw_mqtt_client_t *cl, int timeout_ms, int wait_ms);
/* Destroy the client and close the timer. Returns 1 when the owner will be
 * freed by the timer's close callback (uv_run), 0 when the caller frees it. */
int cw_mqtt_client_release(cw_mqtt_client_t *cl);

#endif
