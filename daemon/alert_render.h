/* alert_render.h - render an alert event (pure, alert_render.c). */
#ifndef CW_ALERT_RENDER_H
#define CW_ALERT_RENDER_H

#include <stddef.h>

#include "cw.h"

/* The alert JSON published on MQTT and written to a JSON alert log:
 * {"id","kind","severity","event","state","station","socket","ts","value",
 *  "threshold","unit",["by",]"message"}. Returns bytes written (< cap) or
 * -ENOSPC. */
int cw_alert_json(const cw_alert_event_t *ev, char *out, size_t cap);
/* A text alert log line with the time at utc_offset_min. As above. */
int cw_alert_text(const cw_alert_event_t *ev, int utc_offset_min, char *out, size_t cap);

#endif
