/* control.h - the one parser and router of operator commands, whatever
 * carries them: the MQTT command topic (cmd_topic) and PostgreSQL NOTIFY
 * on cw_alert_cmd (cw_ack / cw_close in SQL) alike.
 *
 * A command is strict JSON (RFC 8259, no trailing bytes):
 *   {"id": N, "action": "ack" | "rectify" | "close", "by": "who",
 *    "station": "code", "note": "text", "ts": ms}
 * id an integer in [1, 9e15); by, station, note and ts optional (null =
 * absent), station a valid station code when present, ts the event time in
 * ms since the epoch (the SQL functions send the time they stored; without
 * it the worker's clock is used); other keys are ignored. Instead of a
 * numeric id an alert may be named by its short reference, as "ref" or as
 * a string "id" (as typed: "a-1129-42"; digits are an id): it is resolved
 * through the owner map (the alerts this daemon holds, not closed).
 *
 * The owner map knows every alert this daemon holds: each alert event
 * passes cw_control_note, and alerts restored from the database at start
 * (or when a [cluster] shard is taken) pass cw_control_restored. A command
 * for an id or reference not in it (no such alert, closed already, held by
 * another daemon) is not posted: a log line says so in words ("is already
 * closed" for one of the last 256 closed here, "is not held by this
 * daemon" otherwise), at warning level and counted and dead-lettered as a
 * rejected command from MQTT, at info level from the database (NOTIFY: the
 * database has stored the action already) and in cluster mode (every member
 * hears every command). Only past 65536 alerts held at once, when the map
 * is reset, does an id not in it go to every worker. A command that breaks these
 * rules is rejected (counted, dead-lettered with its source) and nothing is
 * posted. A valid one becomes a CW_CTL_OPERATOR control message, sent to
 * the worker that raised the alert (an id -> worker map fed by
 * cw_control_note), else to the worker owning the station named, else to
 * every worker (the ones that do not hold the alert ignore it).
 *
 * Threads: cw_control_submit from any thread (the MQTT receive thread, the
 * writer thread); everything else on the main loop. */
#ifndef CW_CONTROL_H
#define CW_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ctl.h"
#include "env.h"

#define CW_CONTROL_NOTIFY_SOURCE "cw_alert_cmd" /* the NOTIFY channel, as a source */

typedef struct cw_command {
  int64_t id;
  cw_event_t action;               /* CW_EV_ACKNOWLEDGED, CW_EV_RECTIFIED or CW_EV_CLOSED */
  char by[32];                     /* "operator" when not given */
  char station[CW_STATION_MAX + 1]; /* "" when not given */
  char note[101];                  /* rectify note, cut at 100 bytes; "" when not given */
  int64_t ts_ms;                   /* event time; 0 when not given */
  char ref[16];                    /* "A-MMDD-NNNN" when the alert is named by reference (id 0) */
} cw_command_t;

/* Pure. 0, or the reject reason (CW_REJ_INVALID_JSON, CW_REJ_WRONG_TYPE)
 * with *why set to a static explanation. */
cw_reject_t cw_command_parse(const char *payload, size_t len, cw_command_t *out, const char **why);

typedef struct cw_control cw_control_t;

/* loop may be NULL (tests): cw_control_submit then runs the command at once. */
int cw_control_create(const cw_env_t *env, cw_ctl_port_t port, uv_loop_t *loop,
                      cw_control_t **out);
/* Main loop: parse, route, post. source names the channel for the
 * dead-letter file (the cmd topic, or "cw_alert_cmd"). 0, -EINVAL
 * (rejected), -ENOENT (an alert not held: see above) or -ENOMEM. */
int cw_control_command(cw_control_t *c, const char *payload, size_t len, const char *source);
/* Any thread: queue a copy for the main loop (source must outlive c). */
void cw_control_submit(cw_control_t *c, const char *payload, size_t len, const char *source);
/* Main loop: note which worker raised an alert (every alert event passes
 * here); a closed alert leaves the map. */
void cw_control_note(cw_control_t *c, const cw_alert_event_t *ev);
/* Before commands arrive: fn is told of every command posted that did not
 * come from the database (the MQTT command topic), with the event(s) it
 * causes, so that the stored event can record its origin (main.c hands it
 * to the writer). */
void cw_control_on_mqtt(cw_control_t *c, void (*fn)(void *ctx, int64_t id, cw_event_t event),
                        void *ctx);
/* Any thread: an alert restored from the database (a CW_CTL_RESTORE_ALERT
 * posted to a worker) joins the owner map, through the main loop. */
void cw_control_restored(cw_control_t *c, const cw_alert_event_t *ev);
void cw_control_free(cw_control_t *c); /* closes its loop handle (uv_run to finish) */

#endif
