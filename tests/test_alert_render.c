/* test_alert_render.c - alert JSON and text lines exactly as
 * docs/ARCHITECTURE.md ("Alert messages") spells them, and escaping of
 * hostile strings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert_render.h"
#include "test.h"

static cw_alert_event_t sample(void) {
  cw_alert_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.id = 1234;
  ev.kind = CW_KIND_THERMAL_RUNAWAY;
  ev.severity = CW_SEV_CRITICAL;
  ev.event = CW_EV_RAISED;
  ev.state = CW_ALERT_OPEN;
  snprintf(ev.station, sizeof ev.station, "CX-0423");
  ev.socket = 7;
  ev.ts_ms = 1764374400123LL;
  ev.value = 3.2;
  ev.threshold = 1.0;
  snprintf(ev.unit, sizeof ev.unit, "C/s");
  snprintf(ev.message, sizeof ev.message, "temperature rising 3.2 C/s for 4 s");
  return ev;
}

CW_TEST(alerts_json_exact) {
  cw_alert_event_t ev = sample();
  char out[1024];
  int n = cw_alert_json(&ev, out, sizeof out);
  const char *want =
      "{\"id\":1234,\"kind\":\"thermal_runaway\",\"severity\":\"critical\",\"event\":\"raised\","
      "\"state\":\"open\",\"station\":\"CX-0423\",\"socket\":7,\"ts\":1764374400123,\"value\":3.2,"
      "\"threshold\":1.0,\"unit\":\"C/s\",\"count\":1,\"message\":\"temperature rising 3.2 C/s for 4 s\"}";
  CHECK_STR(out, want);
  CHECK_EQ(n, (long long)strlen(want));
}

CW_TEST(alerts_json_numbers) {
  cw_alert_event_t ev = sample();
  char out[1024];
  /* a float measurement prints as its shortest decimal, not as conversion noise */
  ev.value = (double)31.7f;
  ev.threshold = 1000;
  ev.kind = CW_KIND_OVERLOAD;
  ev.event = CW_EV_CLOSED;
  ev.state = CW_ALERT_CLOSED;
  snprintf(ev.by, sizeof ev.by, "ops-anna");
  CHECK(cw_alert_json(&ev, out, sizeof out) > 0);
  CHECK(strstr(out, "\"value\":31.7,\"threshold\":1000.0,") != NULL);
  CHECK(strstr(out, "\"kind\":\"overload\"") != NULL);
  CHECK(strstr(out, "\"event\":\"closed\",\"state\":\"closed\"") != NULL);
  CHECK(strstr(out, "\"by\":\"ops-anna\"") != NULL);
  /* JSON has no NaN or inf */
  ev.value = NAN;
  ev.threshold = INFINITY;
  CHECK(cw_alert_json(&ev, out, sizeof out) > 0);
  CHECK(strstr(out, "\"value\":null,\"threshold\":null,") != NULL);
  ev.value = -0.25;
  CHECK(cw_alert_json(&ev, out, sizeof out) > 0);
  CHECK(strstr(out, "\"value\":-0.25,") != NULL);
}

CW_TEST(alerts_json_escaping) {
  cw_alert_event_t ev = sample();
  char out[1024];
  /* hostile strings must not break out of their JSON string */
  snprintf(ev.station, sizeof ev.station, "X\",\"id\":1");
  snprintf(ev.message, sizeof ev.message, "a\"b\\c\nd\te\x01" "f\x7f\xff\xc3\xa9");
  CHECK(cw_alert_json(&ev, out, sizeof out) > 0);
  CHECK(strstr(out, "\"station\":\"X\\\",\\\"id\\\":1\"") != NULL);
  CHECK(strstr(out, "\"message\":\"a\\\"b\\\\c\\nd\\te\\u0001f\\u007f\\ufffd\xc3\xa9\"}") != NULL);
  /* and the result still has exactly one top-level "id" */
  CHECK(strstr(out, "{\"id\":1234,") == out);
}

CW_TEST(alerts_json_enospc) {
  cw_alert_event_t ev = sample();
  char out[64];
  memset(out, 'x', sizeof out);
  CHECK_EQ(cw_alert_json(&ev, out, sizeof out), -ENOSPC);
  CHECK(memchr(out, 0, sizeof out) != NULL); /* still a C string */
  char txt[40];
  CHECK_EQ(cw_alert_text(&ev, 0, txt, sizeof txt), -ENOSPC);
}

CW_TEST(alerts_text_line) {
  cw_alert_event_t ev = sample();
  char out[1024];
  int n = cw_alert_text(&ev, 480, out, sizeof out);
  const char *want =
      "2025-11-29T00:00:00.123Z CRITICAL thermal_runaway raised id=1234 station=CX-0423 "
      "socket=7 state=open value=3.2 threshold=1.0 unit=C/s "
      "local=2025-11-29T08:00:00.123+08:00 \"temperature rising 3.2 C/s for 4 s\"";
  CHECK_STR(out, want);
  CHECK_EQ(n, (long long)strlen(want));
  /* negative offsets, escalation, operator name, escaped message */
  ev.event = CW_EV_ACKNOWLEDGED;
  ev.state = CW_ALERT_ACKNOWLEDGED;
  ev.severity = CW_SEV_WARNING;
  snprintf(ev.by, sizeof ev.by, "night shift");
  snprintf(ev.message, sizeof ev.message, "two\nlines");
  CHECK(cw_alert_text(&ev, -150, out, sizeof out) > 0);
  const char *head = "2025-11-29T00:00:00.123Z WARNING thermal_runaway acknowledged ";
  CHECK(strncmp(out, head, strlen(head)) == 0);
  CHECK(strstr(out, " by=\"night shift\" local=2025-11-28T21:30:00.123-02:30 \"two\\nlines\"") != NULL);
  CHECK(strchr(out, '\n') == NULL);
}

/* count after a repeat, the operator's note of a rectified event, in both
 * renderings. */
CW_TEST(alerts_render_count_note) {
  cw_alert_event_t ev = sample();
  char out[1024];
  ev.event = CW_EV_REPEATED;
  ev.count = 3;
  CHECK(cw_alert_text(&ev, 480, out, sizeof out) > 0);
  CHECK(strstr(out, " raised ") == NULL);
  CHECK(strstr(out, " repeated id=1234 ") != NULL);
  CHECK(strstr(out, " unit=C/s count=3 local=") != NULL);
  CHECK(cw_alert_json(&ev, out, sizeof out) > 0);
  CHECK(strstr(out, "\"unit\":\"C/s\",\"count\":3,\"message\"") != NULL);
  ev.count = 1;
  CHECK(cw_alert_text(&ev, 480, out, sizeof out) > 0);
  CHECK(strstr(out, "count=") == NULL);
  ev.event = CW_EV_RECTIFIED;
  ev.state = CW_ALERT_RECTIFIED;
  snprintf(ev.by, sizeof ev.by, "anna");
  snprintf(ev.message, sizeof ev.message, "rectified by anna: replaced \"socket\" 7");
  CHECK(cw_alert_text(&ev, 0, out, sizeof out) > 0);
  CHECK(strstr(out, " by=\"anna\" note=\"replaced \\\"socket\\\" 7\" local=2025-11-29T00:00:00.123+00:00 ") != NULL);
  CHECK(cw_alert_json(&ev, out, sizeof out) > 0);
  CHECK(strstr(out, "\"by\":\"anna\",\"note\":\"replaced \\\"socket\\\" 7\",\"message\"") != NULL);
  /* the short reference, in both */
  snprintf(ev.ref, sizeof ev.ref, "A-1129-0042");
  CHECK(cw_alert_json(&ev, out, sizeof out) > 0);
  const char *head = "{\"id\":1234,\"ref\":\"A-1129-0042\",\"kind\":";
  CHECK(strncmp(out, head, strlen(head)) == 0);
  CHECK(cw_alert_text(&ev, 0, out, sizeof out) > 0);
  CHECK(strstr(out, "7\" ref=A-1129-0042 local=2025-11-29T00:00:00.123+00:00 \"") != NULL);
  /* no note: nothing after "rectified by anna" */
  snprintf(ev.message, sizeof ev.message, "rectified by anna");
  CHECK(cw_alert_event_note(&ev) == NULL);
  snprintf(ev.message, sizeof ev.message, "rectified by bob: x");
  CHECK(cw_alert_event_note(&ev) == NULL);
}


/* The MQTT topic of an alert: one place builds it for the publisher and
 * for the start-up reconciliation of retained copies. */
CW_TEST(alerts_topic) {
  cw_alert_event_t ev = {0};
  char out[64];
  snprintf(ev.station, sizeof ev.station, "ST-01");
  ev.socket = 7;
  ev.kind = CW_KIND_THERMAL_RUNAWAY;
  CHECK_EQ(cw_alert_topic("cw/alerts", &ev, out, sizeof out), (int)strlen("cw/alerts/ST-01/7/thermal_runaway"));
  CHECK_STR(out, "cw/alerts/ST-01/7/thermal_runaway");
  ev.socket = 0;
  ev.kind = CW_KIND_OFFLINE;
  CHECK(cw_alert_topic("x", &ev, out, sizeof out) > 0);
  CHECK_STR(out, "x/ST-01/0/offline");
  /* a station that would be a wildcard or two levels gets no topic */
  snprintf(ev.station, sizeof ev.station, "A/B");
  CHECK_EQ(cw_alert_topic("x", &ev, out, sizeof out), -EINVAL);
  snprintf(ev.station, sizeof ev.station, "A+");
  CHECK_EQ(cw_alert_topic("x", &ev, out, sizeof out), -EINVAL);
  snprintf(ev.station, sizeof ev.station, "ST-01");
  CHECK_EQ(cw_alert_topic("cw/alerts", &ev, out, 10), -ENOSPC);
}
