/* control.h - the one parser and router of operator commands, whatever
 * carries them: the MQTT command topic (cmd_topic) and PostgreSQL NOTIFY
 * on cw_alert_cmd (cw_ack / cw_close in SQL) alike.
 *
 * A command is strict JSON (RFC 8259, no trailing bytes):
 *   {"id": N, "action": "ack" | "close", "by": "who", "station": "code"}
 * id an integer in [1, 9e15); by and station optional (null = absent),
 * station a valid station code when present. A command that breaks these
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

typedef struct cw_command {
  int64_t id;
  cw_event_t action;               /* CW_EV_ACKNOWLEDGED or CW_EV_CLOSED */
  char by[32];                     /* "operator" when not given */
  char station[CW_STATION_MAX + 1]; /* "" when not given */
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
 * (rejected) or -ENOMEM. */
int cw_control_command(cw_control_t *c, const char *payload, size_t len, const char *source);
/* Any thread: queue a copy for the main loop (source must outlive c). */
void cw_control_submit(cw_control_t *c, const char *payload, size_t len, const char *source);
/* Main loop: note which worker raised an alert (every alert event passes
 * here); a closed alert leaves the map. */
void cw_control_note(cw_control_t *c, const cw_alert_event_t *ev);
void cw_control_free(cw_control_t *c); /* closes its loop handle (uv_run to finish) */

#endif
