/* test_control.c - the one operator-command parser and router (control.c):
 * the rules every source shares, rejects counted and handed to the reject
 * sink with their source, and the route of a valid command (owner map, then
 * station, then every worker). */
#include <errno.h>
#include <stdlib.h>

#include "control.h"
#include "fixture.h"
#include "test.h"

CW_TEST(control_parse_rules) {
  cw_command_t cmd;
  const char *why = NULL;
  const char *ok = "{\"id\":42,\"action\":\"ack\",\"by\":\"ops\"}";
  CHECK_EQ(cw_command_parse(ok, strlen(ok), &cmd, &why), CW_REJ_OK);
  CHECK_EQ(cmd.id, 42);
  CHECK_EQ(cmd.action, CW_EV_ACKNOWLEDGED);
  CHECK_STR(cmd.by, "ops");
  CHECK_STR(cmd.station, "");
  /* what PostgreSQL's json_build_object sends for cw_close(7, NULL) */
  const char *notify = "{\"id\" : 7, \"action\" : \"close\", \"by\" : null, \"station\" : \"ST-1\"}";
  CHECK_EQ(cw_command_parse(notify, strlen(notify), &cmd, &why), CW_REJ_OK);
  CHECK_EQ(cmd.action, CW_EV_CLOSED);
  CHECK_STR(cmd.by, "operator");
  CHECK_STR(cmd.station, "ST-1");
  const char *bad_json[] = {"{\"id\":", "", "{\"id\":1,\"action\":\"ack\"\x01}",
                            "{\"id\":1,\"action\":\"ack\"} x"};
  for (int i = 0; i < 4; i++)
    CHECK_EQ(cw_command_parse(bad_json[i], strlen(bad_json[i]), &cmd, &why), CW_REJ_INVALID_JSON);
  const char *bad_type[] = {"[1,2]",
                            "{\"id\":\"x42\",\"action\":\"ack\"}",
                            "{\"id\":42,\"action\":\"delete\"}",
                            "{\"id\":4.5,\"action\":\"close\"}",
                            "{\"id\":42,\"action\":\"ack\",\"by\":7}",
                            "{\"id\":-1,\"action\":\"ack\"}",
                            "{\"id\":9e15,\"action\":\"ack\"}",
                            "{\"id\":1,\"action\":\"ack\",\"station\":\"a/b\"}"};
  for (int i = 0; i < 8; i++)
    CHECK_EQ(cw_command_parse(bad_type[i], strlen(bad_type[i]), &cmd, &why), CW_REJ_WRONG_TYPE);
}

static void check_last(cw_fx_t *f, int n, int target, int64_t id, cw_event_t ev) {
  CHECK_EQ(cw_fx_nposted(f), n);
  CHECK_EQ(f->last_target, target);
  CHECK_EQ(f->posted_tail->type, CW_CTL_OPERATOR);
  CHECK_EQ(f->posted_tail->alert.id, id);
  CHECK_EQ(f->posted_tail->alert.event, ev);
}

CW_TEST(control_routes_and_rejects) {
  static cw_fx_t f;
  cw_control_t *c = NULL;
  CHECK_EQ(cw_fx_init(&f), 0);
  CHECK_EQ(cw_control_create(&f.env, cw_fx_port(&f), NULL, &c), 0);
  /* an id this daemon does not hold: rejected in words, counted, nothing posted */
  const char *a = "{\"id\":42,\"action\":\"ack\",\"by\":\"ops\"}";
  CHECK_EQ(cw_control_command(c, a, strlen(a), "cw/ops/cmd"), -ENOENT);
  CHECK_EQ(cw_fx_nposted(&f), 0);
  CHECK_EQ(atomic_load(&f.rejects), 1);
  CHECK_STR(f.reject_topic, "cw/ops/cmd");
  /* from the database (NOTIFY) it is not a reject: the action is stored */
  const char *b = "{\"id\":43,\"action\":\"close\",\"station\":\"ST1\"}";
  CHECK_EQ(cw_control_command(c, b, strlen(b), CW_CONTROL_NOTIFY_SOURCE), -ENOENT);
  CHECK_EQ(cw_fx_nposted(&f), 0);
  CHECK_EQ(atomic_load(&f.rejects), 1);
  /* an id seen on an alert event: the worker that raised it, until closed */
  cw_alert_event_t ev = {.id = 44, .event = CW_EV_RAISED};
  snprintf(ev.station, sizeof ev.station, "ST9");
  cw_control_note(c, &ev);
  int owner = cw_fx_port(&f).route(&f, "ST9", 3);
  const char *d = "{\"id\":44,\"action\":\"ack\"}";
  cw_control_submit(c, d, strlen(d), "cw/ops/cmd"); /* no loop: runs at once */
  check_last(&f, 1, owner, 44, CW_EV_ACKNOWLEDGED);
  ev.event = CW_EV_CLOSED;
  cw_control_note(c, &ev);
  CHECK_EQ(cw_control_command(c, d, strlen(d), "cw/ops/cmd"), -ENOENT); /* already closed */
  CHECK_EQ(cw_fx_nposted(&f), 1);
  CHECK_EQ(atomic_load(&f.rejects), 2);
  /* an alert restored from the database at start is commandable */
  cw_alert_event_t rs = {.id = 45, .event = CW_EV_RAISED, .state = CW_ALERT_ACKNOWLEDGED};
  snprintf(rs.station, sizeof rs.station, "ST8");
  cw_control_restored(c, &rs);
  const char *e = "{\"id\":45,\"action\":\"close\",\"by\":\"ops\"}";
  CHECK_EQ(cw_control_command(c, e, strlen(e), "cw/ops/cmd"), 0);
  check_last(&f, 2, cw_fx_port(&f).route(&f, "ST8", 3), 45, CW_EV_CLOSED);
  /* rejects: counted, handed to the sink with their source, nothing posted */
  const char *bad = "{\"id\":1,\"action\":\"reboot\"}";
  CHECK_EQ(cw_control_command(c, bad, strlen(bad), "cw_alert_cmd"), -EINVAL);
  CHECK_EQ(cw_control_command(c, "{", 1, "cw/ops/cmd"), -EINVAL);
  CHECK_EQ(cw_fx_nposted(&f), 2);
  CHECK_EQ(atomic_load(&f.m.rejects[CW_REJ_WRONG_TYPE]), 3);
  CHECK_EQ(atomic_load(&f.m.rejects[CW_REJ_INVALID_JSON]), 1);
  CHECK_EQ(atomic_load(&f.rejects), 4);
  CHECK_STR(f.reject_topic, "cw/ops/cmd");
  cw_control_free(c);
  cw_fx_free(&f);
}

/* rectify with a note, and what cw_alert_action (schema/003_ops.sql)
 * NOTIFYs: extra keys ignored, ts taken as the event time. */
CW_TEST(control_parse_rectify_notify) {
  cw_command_t cmd;
  const char *why = NULL;
  const char *r = "{\"id\":42,\"action\":\"rectify\",\"by\":\"anna\",\"note\":\"new plug\"}";
  CHECK_EQ(cw_command_parse(r, strlen(r), &cmd, &why), CW_REJ_OK);
  CHECK_EQ(cmd.action, CW_EV_RECTIFIED);
  CHECK_STR(cmd.note, "new plug");
  CHECK_EQ(cmd.ts_ms, 0);
  const char *n = "{\"id\" : 7, \"action\" : \"rectify\", \"by\" : \"postgres\", \"station\" : \"ST-1\","
                  " \"ref\" : \"A-1129-0042\", \"socket\" : 3, \"kind\" : \"overload\","
                  " \"ts\" : 1764374400123, \"claimed_by\" : \"night shift\", \"note\" : \"fuse\"}";
  CHECK_EQ(cw_command_parse(n, strlen(n), &cmd, &why), CW_REJ_OK);
  CHECK_EQ(cmd.id, 7);
  CHECK_EQ(cmd.ts_ms, 1764374400123LL);
  CHECK_STR(cmd.by, "postgres");
  CHECK_STR(cmd.note, "fuse");
  const char *nulls = "{\"id\":7,\"action\":\"ack\",\"note\":null,\"ts\":null,\"claimed_by\":null}";
  CHECK_EQ(cw_command_parse(nulls, strlen(nulls), &cmd, &why), CW_REJ_OK);
  CHECK_STR(cmd.note, "");
  const char *bad[] = {"{\"id\":7,\"action\":\"rectify\",\"note\":5}",
                       "{\"id\":7,\"action\":\"ack\",\"ts\":\"now\"}",
                       "{\"id\":7,\"action\":\"ack\",\"ts\":-3}",
                       "{\"id\":7,\"action\":\"ack\",\"ts\":1.5}"};
  for (int i = 0; i < 4; i++) CHECK_EQ(cw_command_parse(bad[i], strlen(bad[i]), &cmd, &why), CW_REJ_WRONG_TYPE);
  /* an alert named by id as a string, or by its reference as typed */
  const char *sid = "{\"id\":\"42\",\"action\":\"ack\"}";
  CHECK_EQ(cw_command_parse(sid, strlen(sid), &cmd, &why), CW_REJ_OK);
  CHECK_EQ(cmd.id, 42);
  const char *sref = "{\"id\":\"a-1129-42\",\"action\":\"close\"}";
  CHECK_EQ(cw_command_parse(sref, strlen(sref), &cmd, &why), CW_REJ_OK);
  CHECK_EQ(cmd.id, 0);
  CHECK_STR(cmd.ref, "A-1129-0042");
  const char *rref = "{\"ref\":\"A-1129-0042\",\"action\":\"rectify\",\"note\":\"ok\"}";
  CHECK_EQ(cw_command_parse(rref, strlen(rref), &cmd, &why), CW_REJ_OK);
  CHECK_STR(cmd.ref, "A-1129-0042");
  const char *noid = "{\"action\":\"ack\"}";
  CHECK_EQ(cw_command_parse(noid, strlen(noid), &cmd, &why), CW_REJ_WRONG_TYPE);
  /* the note and time travel in the control message */
  static cw_fx_t f;
  cw_control_t *c = NULL;
  CHECK_EQ(cw_fx_init(&f), 0);
  CHECK_EQ(cw_control_create(&f.env, cw_fx_port(&f), NULL, &c), 0);
  cw_alert_event_t held = {.id = 7, .event = CW_EV_RAISED};
  snprintf(held.station, sizeof held.station, "ST-1");
  cw_control_note(c, &held);
  CHECK_EQ(cw_control_command(c, n, strlen(n), "cw_alert_cmd"), 0);
  CHECK_EQ(f.posted_tail->alert.event, CW_EV_RECTIFIED);
  CHECK_STR(f.posted_tail->alert.message, "fuse");
  CHECK_EQ(f.posted_tail->ts_ms, 1764374400123LL);
  /* by reference: resolved through the owner map, unknown ones rejected */
  int np = cw_fx_nposted(&f);
  CHECK_EQ(cw_control_command(c, rref, strlen(rref), "cw/alerts/cmd"), -ENOENT);
  CHECK_EQ(cw_fx_nposted(&f), np);
  cw_alert_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.id = 77;
  ev.event = CW_EV_RAISED;
  snprintf(ev.station, sizeof ev.station, "ST-1");
  snprintf(ev.ref, sizeof ev.ref, "A-1129-0042");
  cw_control_note(c, &ev);
  CHECK_EQ(cw_control_command(c, rref, strlen(rref), "cw/alerts/cmd"), 0);
  CHECK_EQ(f.posted_tail->alert.id, 77);
  CHECK_EQ(f.posted_tail->alert.event, CW_EV_RECTIFIED);
  cw_control_free(c);
  cw_fx_free(&f);
}

/* A newline or an escape in "by" cannot forge a log line or reach a
 * terminal: control characters become \xNN. */
CW_TEST(control_by_control_chars_escaped) {
  cw_command_t cmd;
  const char *why = NULL;
  const char *p = "{\"id\":7,\"action\":\"ack\",\"by\":\"eve\\nFAKE\\u001b[2J\"}";
  CHECK_EQ(cw_command_parse(p, strlen(p), &cmd, &why), CW_REJ_OK);
  CHECK_STR(cmd.by, "eve\\x0aFAKE\\x1b[2J");
}
