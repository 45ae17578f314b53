/* test_alerts_render.c - alert JSON and text lines exactly as DESIGN.md
 * section 3 spells them, escaping of hostile strings, the operator command
 * parser's rejects, and the dead-letter file (escaping, rotation). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
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
      "\"threshold\":1.0,\"unit\":\"C/s\",\"message\":\"temperature rising 3.2 C/s for 4 s\"}";
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
      "2025-11-29T08:00:00.123+08:00 CRITICAL thermal_runaway raised id=1234 station=CX-0423 "
      "socket=7 state=open value=3.2 threshold=1.0 unit=C/s "
      "\"temperature rising 3.2 C/s for 4 s\"";
  CHECK_STR(out, want);
  CHECK_EQ(n, (long long)strlen(want));
  /* negative offsets, escalation, operator name, escaped message */
  ev.event = CW_EV_ACKNOWLEDGED;
  ev.state = CW_ALERT_ACKNOWLEDGED;
  ev.severity = CW_SEV_WARNING;
  snprintf(ev.by, sizeof ev.by, "night shift");
  snprintf(ev.message, sizeof ev.message, "two\nlines");
  CHECK(cw_alert_text(&ev, -150, out, sizeof out) > 0);
  const char *head = "2025-11-28T21:30:00.123-02:30 WARNING thermal_runaway acknowledged ";
  CHECK(strncmp(out, head, strlen(head)) == 0);
  CHECK(strstr(out, " by=\"night shift\" \"two\\nlines\"") != NULL);
  CHECK(strchr(out, '\n') == NULL);
}

CW_TEST(alerts_command_rejects) {
  cw_daemon_t *d = calloc(1, sizeof *d);
  cw_alerts_t *a = NULL;
  CHECK(d != NULL);
  cw_config_defaults(&d->cfg);
  snprintf(d->cfg.alert_log, sizeof d->cfg.alert_log, "%s", "");
  CHECK_EQ(cw_alerts_create(d, &a), 0);
  /* no workers: a valid command is accepted and posted nowhere */
  const char *ok = "{\"id\":42,\"action\":\"ack\",\"by\":\"ops\"}";
  CHECK_EQ(cw_alerts_command(a, ok, strlen(ok)), 0);
  CHECK_EQ(atomic_load(&d->m.rejects[CW_REJ_INVALID_JSON]), 0);
  const char *bad_json[] = {"{\"id\":", "", "{\"id\":1,\"action\":\"ack\"\x01}"};
  for (int i = 0; i < 3; i++) CHECK_EQ(cw_alerts_command(a, bad_json[i], strlen(bad_json[i])), -EINVAL);
  CHECK_EQ(atomic_load(&d->m.rejects[CW_REJ_INVALID_JSON]), 3);
  const char *bad_type[] = {"[1,2]", "{\"id\":\"42\",\"action\":\"ack\"}", "{\"id\":42,\"action\":\"delete\"}",
                            "{\"id\":4.5,\"action\":\"close\"}", "{\"id\":42,\"action\":\"ack\",\"by\":7}",
                            "{\"id\":-1,\"action\":\"ack\"}"};
  for (int i = 0; i < 6; i++) CHECK_EQ(cw_alerts_command(a, bad_type[i], strlen(bad_type[i])), -EINVAL);
  CHECK_EQ(atomic_load(&d->m.rejects[CW_REJ_WRONG_TYPE]), 6);
  cw_alerts_free(a);
  free(d);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (len) *len = n;
  return buf;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; s && *s; s++) n += *s == '\n';
  return n;
}

CW_TEST(alerts_deadletter_escaping) {
  char dir[] = "/tmp/cwdlXXXXXX", path[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/dl.log", dir);
  cw_deadletter_t *dl = NULL;
  CHECK_EQ(cw_deadletter_open(&dl, path, 1 << 20), 0);
  const char payload[] = "a\"b\\c\n\x01\xff\xc3\xa9\0z";
  const char topic[] = "cw/\"evil\"\n/1/telemetry";
  cw_deadletter_write(dl, CW_REJ_INVALID_JSON, 2, "bad\tthing", topic, strlen(topic), payload,
                      sizeof payload - 1);
  cw_deadletter_close(dl);
  size_t len = 0;
  char *s = slurp(path, &len);
  unlink(path);
  rmdir(dir);
  CHECK(s != NULL);
  CHECK_EQ(count_lines(s), 1);
  CHECK_EQ(strlen(s), len); /* the NUL in the payload was escaped */
  CHECK(strstr(s, " reason=invalid_json index=2 detail=\"bad\\tthing\" ") != NULL);
  CHECK(strstr(s, " topic=\"cw/\\\"evil\\\"\\n/1/telemetry\" ") != NULL);
  CHECK(strstr(s, " len=12 payload=\"a\\\"b\\\\c\\n\\u0001\\xff\xc3\xa9\\u0000z\"\n") != NULL);
  free(s);
}

CW_TEST(alerts_deadletter_cap_and_rotation) {
  char dir[] = "/tmp/cwdlXXXXXX", path[64], old[80];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/dl.log", dir);
  snprintf(old, sizeof old, "%s/dl.log.1", dir);
  cw_deadletter_t *dl = NULL;
  const uint64_t max = 4096;
  /* one long payload is cut to 4 KiB, with its true length and a marker */
  CHECK_EQ(cw_deadletter_open(&dl, path, 1 << 20), 0);
  char big[10000];
  memset(big, 'q', sizeof big);
  cw_deadletter_write(dl, CW_REJ_OVERSIZE, -1, NULL, "t", 1, big, sizeof big);
  cw_deadletter_close(dl);
  size_t nb = 0;
  char *sb = slurp(path, &nb);
  unlink(path);
  CHECK(sb != NULL);
  CHECK(strstr(sb, "len=10000 payload=\"") != NULL);
  CHECK(strstr(sb, "qqq...\"\n") != NULL);
  CHECK(nb < 4096 + 200);
  free(sb);
  /* ~690-byte lines into a 4096-byte file: rotated to .1 once, nothing lost */
  CHECK_EQ(cw_deadletter_open(&dl, path, max), 0);
  char small[600];
  memset(small, 'p', sizeof small);
  for (int i = 0; i < 9; i++)
    cw_deadletter_write(dl, CW_REJ_OUT_OF_RANGE, i, NULL, "t", 1, small, sizeof small);
  cw_deadletter_close(dl);
  size_t n1 = 0, n0 = 0;
  char *s1 = slurp(old, &n1), *s0 = slurp(path, &n0);
  unlink(path);
  unlink(old);
  rmdir(dir);
  CHECK(s0 != NULL && s1 != NULL);
  CHECK(n0 <= max && n1 <= max);
  CHECK_EQ(count_lines(s0) + count_lines(s1), 9);
  CHECK(strstr(s1, "reason=out_of_range index=0 ") != NULL);
  CHECK(strstr(s0, "reason=out_of_range index=8 ") != NULL);
  free(s0);
  free(s1);
}
