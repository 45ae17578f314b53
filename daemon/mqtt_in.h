/* mqtt_in.h - the ingest MQTT client (Paho MQTTAsync): a persistent session
 * (fixed client id, clean session off, QoS 1) subscribed to the telemetry
 * topics and the command topic. Every message goes to a callback main.c
 * wires: telemetry to deliver (a pipeline's ingest), the command topic to
 * command (control). One client feeds one pipeline; a process may run
 * several, each with its own client id and stations. */
#ifndef CW_MQTT_IN_H
#define CW_MQTT_IN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "env.h"
#include "ingest.h"
#include "journal.h"

typedef struct cw_mqtt_in cw_mqtt_in_t;

typedef struct cw_mqtt_in_cfg {
  const cw_env_t *env;
  uv_loop_t *loop; /* connect retry timer; may be NULL */
  /* Paho's receive thread, with paho's lock held: process or store the
   * message and return (waiting while a ring is full is allowed:
   * backpressure). Returning lets paho acknowledge the message; its bytes
   * are freed then. 0 or -errno (logged). Every per-message field travels
   * in cw_msg_t (lib/ingest.h). */
  int (*deliver)(void *ctx, const cw_msg_t *msg);
  void *deliver_ctx;
  /* Paho's receive thread: a message on cmd_topic (payload not NUL-terminated). */
  void (*command)(void *ctx, const char *payload, size_t len);
  void *command_ctx;
  /* A shard's client ([cluster]): shard >= 0 connects as
   * <client_id_prefix><shard>, subscribes only to the partitions p with
   * p mod shards = shard ({partition} in the topics), not to the command
   * topic, and never reconnects by itself: cw_mqtt_in_connect does, while
   * the shard's lease is held. shard < 0: the process's one ingest client. */
  int shard;
  /* Paho's thread, after each connect (may be NULL): the shard's blind
   * window starts here. */
  void (*connected)(void *ctx, int shard);
  void *connected_ctx;
} cw_mqtt_in_cfg_t;

int cw_mqtt_in_create(const cw_mqtt_in_cfg_t *cfg, cw_mqtt_in_t **out);
int cw_mqtt_in_start(cw_mqtt_in_t *m); /* connect + subscribe (async, auto-reconnect) */
/* A shard's client, any thread: connect (async) unless connected or
 * connecting; drop the connection at once (the broker keeps the session);
 * 1 while connected or connecting. */
int cw_mqtt_in_connect(cw_mqtt_in_t *m);
void cw_mqtt_in_drop(cw_mqtt_in_t *m);
int cw_mqtt_in_up(cw_mqtt_in_t *m);
/* Stop consuming, keep the session (the broker queues meanwhile); returns
 * once no delivery is in progress or can start. */
void cw_mqtt_in_pause(cw_mqtt_in_t *m);
/* How long the delivery in progress has been waiting (a full ring), 0 if
 * none: backpressure, for lib/blind.h. Any thread. */
int64_t cw_mqtt_in_stalled_ms(cw_mqtt_in_t *m, int64_t now_ms);
/* Before the client connects: append every telemetry message to j before it
 * is delivered (and so before paho acknowledges it). j stays the caller's. */
void cw_mqtt_in_journal(cw_mqtt_in_t *m, cw_journal_t *j);
void cw_mqtt_in_free(cw_mqtt_in_t *m); /* closes its loop handle (uv_run to finish) */

#endif
