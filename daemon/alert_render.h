/* alert_render.h - render an alert event (pure, alert_render.c). */
#ifndef CW_ALERT_RENDER_H
#define CW_ALERT_RENDER_H

#include <stddef.h>

#include "cw.h"

/* The alert JSON published on MQTT and written to a JSON alert log:
 * {"id",["ref",]"kind","severity","event","state","station","socket","ts","value",
 *  "threshold","unit","count",["by",]["note",]"message"}. Returns bytes
 * written (< cap) or -ENOSPC. */
int cw_alert_json(const cw_alert_event_t *ev, char *out, size_t cap);
/* A text alert log line, the format `chargewatch tail` prints
 * (docs/chargewatch.1): UTC time, SEVERITY, kind, event, id= station=
 * socket= state= value= threshold= unit= [count= when > 1] [by=".."]
 * [note=".."] [ref=] local=<the time at local_offset_min, with its offset>, then
 * the quoted message. As above. */
int cw_alert_text(const cw_alert_event_t *ev, int local_offset_min, char *out, size_t cap);
/* The alert's MQTT topic, <prefix>/<station>/<socket>/<kind> (retained
 * per alert, docs/OPERATIONS.md). The station is a topic level: a name that
 * could carry '/', '+' or '#' gets none. Bytes written (< cap) or -EINVAL,
 * -ENOSPC. */
int cw_alert_topic(const char *prefix, const cw_alert_event_t *ev, char *out, size_t cap);

#endif
