/* alert_sink.h - the main loop's side of the alert rings. Workers push
 * alert events into their alert rings and wake the sink (uv_async); the
 * sink drains every ring and sends each event to (a) the alert log (text or
 * JSON line), (b) the publish callback (MQTT, retained on
 * {topic_prefix}/{station}/{socket}/{kind}; with actuate, cut_power on
 * cw/{station}/{socket}/cmd), (c) the store callback (the writer: alerts
 * tables) and (d) the note callback (control: which worker owns an alert).
 * main.c wires the callbacks; the sink knows no other part. */
#ifndef CW_ALERT_SINK_H
#define CW_ALERT_SINK_H

#include <stddef.h>
#include <uv.h>

#include "cw.h"
#include "env.h"
#include "ring.h"

typedef struct cw_alert_sink cw_alert_sink_t;

typedef struct cw_alert_sink_cfg {
  const cw_env_t *env;
  uv_loop_t *loop;      /* NULL: no async wake-up, cw_alert_sink_drain only */
  cw_ring_t **rings;    /* consumer ends of the alert rings (array copied) */
  int nrings;
  /* Each optional. publish: QoS 1, 0 or -EIO. store: 0 or -errno. */
  int (*publish)(void *ctx, const char *topic, const void *payload, size_t len, int retain);
  void *publish_ctx;
  int (*store)(void *ctx, const cw_alert_event_t *ev);
  void *store_ctx;
  void (*note)(void *ctx, const cw_alert_event_t *ev);
  void *note_ctx;
} cw_alert_sink_cfg_t;

int cw_alert_sink_create(const cw_alert_sink_cfg_t *cfg, cw_alert_sink_t **out); /* 0 or -errno */
void cw_alert_sink_wake(cw_alert_sink_t *s);  /* any thread: uv_async_send */
/* Main loop: process everything queued. Returns the events processed. */
size_t cw_alert_sink_drain(cw_alert_sink_t *s);
/* Main loop: one event that no worker raised (the daemon's own `ingest`
 * alert), through the same outputs in the same order. */
void cw_alert_sink_emit(cw_alert_sink_t *s, const cw_alert_event_t *ev);
void cw_alert_sink_reopen(cw_alert_sink_t *s); /* SIGHUP: reopen the log */
void cw_alert_sink_free(cw_alert_sink_t *s);   /* closes its loop handle (uv_run to finish) */

#endif
