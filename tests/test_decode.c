/* test_decode.c - payload decoding and validation (lib/decode.c) and the
 * shared enum names (lib/cw.c): every field, every reject reason, strict
 * JSON corner cases cJSON alone would let through, arrays and topics. */
#include <errno.h>
#include <stdlib.h>

#include "decode.h"
#include "test.h"

#define NOW 1764374400123LL
#define TS "1764374400123"
#define SOCK_TOPIC "cw/CX-0423/7/telemetry"
#define STATION_TOPIC "cw/CX-0423/telemetry"

typedef struct {
  int n;
  cw_reject_t why[64];
  int idx[64];
  cw_reading_t r[64];
} sink_t;

static void collect(void *ctx, const cw_reading_t *r, cw_reject_t why, int index) {
  sink_t *s = ctx;
  if (s->n >= 64) return;
  s->why[s->n] = why;
  s->idx[s->n] = index;
  if (r) s->r[s->n] = *r;
  else memset(&s->r[s->n], 0xAB, sizeof s->r[0]);
  /* The contract: a reading exactly when accepted. */
  if ((r != NULL) != (why == CW_REJ_OK)) s->why[s->n] = CW_REJ__COUNT;
  s->n++;
}

static int decode_n(sink_t *s, const cw_decode_cfg_t *cfg, const char *topic, const char *p,
                    size_t len) {
  cw_decode_cfg_t def;
  if (!cfg) {
    cw_decode_cfg_defaults(&def);
    cfg = &def;
  }
  memset(s, 0, sizeof *s);
  return cw_decode(cfg, topic, strlen(topic), p, len, NOW, collect, s);
}

static int decode(sink_t *s, const char *topic, const char *p) {
  return decode_n(s, NULL, topic, p, strlen(p));
}

/* The single outcome of a one-reading payload on the socket topic, or
 * CW_REJ__COUNT if there was not exactly one callback. */
static cw_reject_t one_n(const char *p, size_t len) {
  sink_t s;
  int acc = decode_n(&s, NULL, SOCK_TOPIC, p, len);
  if (s.n != 1 || s.idx[0] != -1 || acc != (s.why[0] == CW_REJ_OK)) return CW_REJ__COUNT;
  return s.why[0];
}
static cw_reject_t one(const char *p) { return one_n(p, strlen(p)); }

/* {"ts":TS,<fields>} */
static cw_reject_t with(const char *fields) {
  char buf[512];
  snprintf(buf, sizeof buf, "{\"ts\":" TS ",%s}", fields);
  return one(buf);
}

#define CHECK_REJ(expr, want)                                                          \
  do {                                                                                 \
    cw_reject_t got_ = (expr);                                                         \
    if (got_ != (want)) {                                                              \
      cw_test_fail(__FILE__, __LINE__, "%s: got %s, want %s", #expr,                   \
                   got_ == CW_REJ__COUNT ? "(not one callback)" : cw_reject_name(got_), \
                   cw_reject_name(want));                                              \
      return;                                                                          \
    }                                                                                  \
  } while (0)

CW_TEST(decode_all_fields) {
  sink_t s;
  const char *p = "{\"ts\":1764374400123,\"v\":229.8,\"a\":1.32,\"w\":301.5,\"wh\":1532.4,"
                  "\"t\":31.7,\"t_amb\":-12.5,\"smoke\":0,\"state\":\"charging\",\"stop\":\"over_temp\","
                  "\"socket\":7}";
  CHECK_EQ(decode(&s, SOCK_TOPIC, p), 1);
  CHECK_EQ(s.n, 1);
  CHECK_EQ(s.why[0], CW_REJ_OK);
  CHECK_EQ(s.idx[0], -1);
  const cw_reading_t *r = &s.r[0];
  CHECK_EQ(r->ts_ms, 1764374400123LL);
  CHECK_NEAR(r->v, 229.8, 1e-4);
  CHECK_NEAR(r->a, 1.32, 1e-6);
  CHECK_NEAR(r->w, 301.5, 1e-4);
  CHECK_NEAR(r->wh, 1532.4, 1e-9);
  CHECK_NEAR(r->t, 31.7, 1e-5);
  CHECK_NEAR(r->t_amb, -12.5, 1e-6);
  CHECK_EQ(r->smoke, 0);
  CHECK_EQ(r->state, CW_STATE_CHARGING);
  CHECK_EQ(r->stop, CW_STOP_OVER_TEMP);
  CHECK_EQ(r->socket, 7);
  CHECK_STR(r->station, "CX-0423");
  CHECK_EQ(r->have, CW_HAVE_V | CW_HAVE_A | CW_HAVE_W | CW_HAVE_WH | CW_HAVE_T | CW_HAVE_T_AMB |
                        CW_HAVE_SMOKE | CW_HAVE_STATE | CW_HAVE_STOP);
  /* Only what was sent is marked present. */
  CHECK_EQ(decode(&s, SOCK_TOPIC, "{\"ts\":1764374400000,\"t\":20}"), 1);
  CHECK_EQ(s.r[0].have, CW_HAVE_T);
  CHECK_EQ(s.r[0].ts_ms, 1764374400000LL);
}

CW_TEST(decode_enum_names) {
  static const char *want[] = {"ok", "bad_topic", "empty", "oversize", "invalid_json",
                               "not_object", "missing_ts", "wrong_type", "non_finite",
                               "out_of_range", "no_measurement", "bad_socket", "future_ts",
                               "too_old", "duplicate", "db_rejected"};
  CHECK_EQ(sizeof want / sizeof want[0], CW_REJ__COUNT);
  for (int i = 0; i < CW_REJ__COUNT; i++) CHECK_STR(cw_reject_name((cw_reject_t)i), want[i]);
  CHECK_STR(cw_reject_name(CW_REJ__COUNT), "unknown");
  CHECK_STR(cw_reject_name((cw_reject_t)-1), "unknown");
  cw_kind_t k;
  static const char *kinds[] = {"thermal_runaway", "overload", "overnight_charging", "offline",
                                "ingest"};
  for (int i = 0; i < CW_KIND__COUNT; i++) {
    CHECK_STR(cw_kind_name((cw_kind_t)i), kinds[i]);
    CHECK_EQ(cw_kind_parse(kinds[i], &k), 0);
    CHECK_EQ(k, i);
  }
  CHECK_EQ(cw_kind_parse("Overload", &k), -EINVAL);
  CHECK_EQ(cw_kind_parse("", &k), -EINVAL);
  CHECK_EQ(cw_kind_parse(NULL, &k), -EINVAL);
  CHECK_STR(cw_kind_name(CW_KIND__COUNT), "unknown");
  CHECK_STR(cw_severity_name(CW_SEV_NONE), "none");
  CHECK_STR(cw_severity_name(CW_SEV_WARNING), "warning");
  CHECK_STR(cw_severity_name(CW_SEV_CRITICAL), "critical");
  CHECK_STR(cw_event_name(CW_EV_RAISED), "raised");
  CHECK_STR(cw_event_name(CW_EV_ESCALATED), "escalated");
  CHECK_STR(cw_event_name(CW_EV_CLEARED), "cleared");
  CHECK_STR(cw_event_name(CW_EV_ACKNOWLEDGED), "acknowledged");
  CHECK_STR(cw_event_name(CW_EV_CLOSED), "closed");
  CHECK_STR(cw_alert_state_name(CW_ALERT_OPEN), "open");
  CHECK_STR(cw_alert_state_name(CW_ALERT_CLEARED), "cleared");
  CHECK_STR(cw_alert_state_name(CW_ALERT_ACKNOWLEDGED), "acknowledged");
  CHECK_STR(cw_alert_state_name(CW_ALERT_CLOSED), "closed");
}

CW_TEST(decode_empty_and_oversize) {
  cw_decode_cfg_t cfg;
  sink_t s;
  char buf[16385];
  CHECK_REJ(one_n("", 0), CW_REJ_EMPTY);
  /* Exactly max_payload bytes is accepted (whitespace padding after the object). */
  cw_decode_cfg_defaults(&cfg);
  CHECK_EQ(cfg.max_payload, 16384);
  memset(buf, ' ', sizeof buf);
  const char *obj = "{\"ts\":" TS ",\"v\":1}";
  memcpy(buf, obj, strlen(obj));
  CHECK_EQ(decode_n(&s, &cfg, SOCK_TOPIC, buf, 16384), 1);
  CHECK_EQ(s.why[0], CW_REJ_OK);
  CHECK_EQ(decode_n(&s, &cfg, SOCK_TOPIC, buf, 16385), 0);
  CHECK_EQ(s.n, 1);
  CHECK_EQ(s.why[0], CW_REJ_OVERSIZE);
  /* Checked before parsing: oversize garbage is oversize, not invalid_json. */
  cfg.max_payload = 8;
  CHECK_EQ(decode_n(&s, &cfg, SOCK_TOPIC, "\x01\x02garbage!", 10), 0);
  CHECK_EQ(s.why[0], CW_REJ_OVERSIZE);
  /* "[]": no reading, still reported. */
  CHECK_REJ(one("[]"), CW_REJ_EMPTY);
  CHECK_REJ(one(" [ ] "), CW_REJ_EMPTY);
}

CW_TEST(decode_truncated_json) {
  const char *p = "{\"ts\":1764374400123,\"v\":229.8,\"state\":\"idle\",\"x\":[1,{\"y\":true}]}";
  size_t n = strlen(p);
  CHECK_REJ(one_n(p, n), CW_REJ_OK);
  for (size_t k = 1; k < n; k++) {
    cw_reject_t why = one_n(p, k);
    if (why != CW_REJ_INVALID_JSON) {
      cw_test_fail(__FILE__, __LINE__, "prefix %zu: %s", k, cw_reject_name(why));
      return;
    }
  }
}

CW_TEST(decode_trailing_bytes) {
  CHECK_REJ(one("{\"ts\":" TS ",\"v\":1} \r\n\t"), CW_REJ_OK);
  CHECK_REJ(one(" \n{\"ts\":" TS ",\"v\":1}"), CW_REJ_OK);
  CHECK_REJ(one("{\"ts\":" TS ",\"v\":1} x"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\":" TS ",\"v\":1}{\"ts\":" TS ",\"v\":1}"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\":" TS ",\"v\":1},"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\":" TS ",\"v\":1}]"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\":" TS ",\"v\":1,}"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{'ts':" TS "}"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\":" TS ",\"v\":1} \f"), CW_REJ_INVALID_JSON);
}

CW_TEST(decode_nul_bytes) {
  static const char in_str[] = "{\"ts\":" TS ",\"v\":1,\"n\":\"a\0b\"}";
  static const char between[] = "{\"ts\":" TS ",\0\"v\":1}";
  static const char after[] = "{\"ts\":" TS ",\"v\":1}\0";
  static const char lead[] = "\0{\"ts\":" TS ",\"v\":1}";
  CHECK_REJ(one_n(in_str, sizeof in_str - 1), CW_REJ_INVALID_JSON);
  CHECK_REJ(one_n(between, sizeof between - 1), CW_REJ_INVALID_JSON);
  CHECK_REJ(one_n(after, sizeof after - 1), CW_REJ_INVALID_JSON);
  CHECK_REJ(one_n(lead, sizeof lead - 1), CW_REJ_INVALID_JSON);
  /* The same payload without the trailing NUL is fine. */
  CHECK_REJ(one_n(after, sizeof after - 2), CW_REJ_OK);
  CHECK_EQ(cw_json_strict_check(after, sizeof after - 1), -EINVAL);
  CHECK_EQ(cw_json_strict_check(after, sizeof after - 2), 0);
}

CW_TEST(decode_control_chars) {
  CHECK_REJ(with("\"v\":1,\"note\":\"a\x01z\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"note\":\"tab\there\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"note\":\"line\nbreak\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"st\x1f\":1"), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"state\":\"idle\x7f\""), CW_REJ_OUT_OF_RANGE); /* DEL is legal JSON */
  /* Escaped forms are valid JSON. */
  CHECK_REJ(with("\"v\":1,\"note\":\"tab\\there\\n\\u001f\\\"\\\\\\/\\b\\f\\r\""), CW_REJ_OK);
  /* cJSON skips any byte <= 0x20 as whitespace; RFC 8259 allows four. */
  CHECK_REJ(one("{\"ts\":" TS ",\v\"v\":1}"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\":" TS ",\x01\"v\":1}"), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"note\":\"bad \\x escape\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"note\":\"\\u12\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"note\":\"\\ud800\""), CW_REJ_INVALID_JSON); /* lone surrogate */
  CHECK_REJ(with("\"v\":1,\"note\":\"\\ud83d\\ude00\""), CW_REJ_OK);   /* pair */
}

/* Decision: "\u0000" is valid JSON but rejected, because cJSON's C strings
 * would truncate it ("idle\u0000x" would read as "idle"). */
CW_TEST(decode_nul_escape_rejected) {
  CHECK_REJ(with("\"v\":1,\"note\":\"a\\u0000b\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"state\":\"idle\\u0000x\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\\u0000x\":" TS ",\"v\":1}"), CW_REJ_INVALID_JSON);
  /* Other escapes of control characters stay valid, and it is not an RFC error. */
  CHECK_REJ(with("\"v\":1,\"note\":\"a\\u0001b\""), CW_REJ_OK);
  const char *p = "{\"n\":\"a\\u0000b\"}";
  CHECK_EQ(cw_json_strict_check(p, strlen(p)), 0);
  /* An escaped key is the same key: "\u0074s" is "ts". */
  CHECK_REJ(one("{\"\\u0074s\":" TS ",\"v\":1}"), CW_REJ_OK);
}

CW_TEST(decode_utf8) {
  /* "Zürich 充电 🔌" in an unknown field. */
  CHECK_REJ(with("\"v\":1,\"site\":\"Z\xc3\xbcrich \xe5\x85\x85\xe7\x94\xb5 \xf0\x9f\x94\x8c\""),
            CW_REJ_OK);
  CHECK_REJ(with("\"v\":1,\"k\xc3\xbc\":\"x\""), CW_REJ_OK);
  CHECK_REJ(with("\"v\":1,\"s\":\"\xc3\x28\""), CW_REJ_INVALID_JSON);     /* bad continuation */
  CHECK_REJ(with("\"v\":1,\"s\":\"\xc0\xaf\""), CW_REJ_INVALID_JSON);     /* overlong '/' */
  CHECK_REJ(with("\"v\":1,\"s\":\"\xe0\x80\xaf\""), CW_REJ_INVALID_JSON); /* overlong */
  CHECK_REJ(with("\"v\":1,\"s\":\"\xed\xa0\x80\""), CW_REJ_INVALID_JSON); /* surrogate */
  CHECK_REJ(with("\"v\":1,\"s\":\"\xf4\x90\x80\x80\""), CW_REJ_INVALID_JSON); /* > U+10FFFF */
  CHECK_REJ(with("\"v\":1,\"s\":\"\xf5\x80\x80\x80\""), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"s\":\"\xe5\x85\""), CW_REJ_INVALID_JSON);     /* truncated */
  CHECK_REJ(with("\"v\":1,\"s\":\"\x80\""), CW_REJ_INVALID_JSON);
  /* A UTF-8 BOM before the text may be ignored (RFC 8259 section 8.1). */
  CHECK_REJ(one("\xef\xbb\xbf{\"ts\":" TS ",\"v\":1}"), CW_REJ_OK);
}

CW_TEST(decode_lenient_numbers) {
  const char *bad[] = {"01", "-01", "1.", "-.5", "+1", ".5", "1.e5", "0x10", "1e", "1e+",
                       "--1", "1.2.3", "-", "Infinity", "NaN", "1e5e5"};
  char f[64];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(f, sizeof f, "\"v\":%s", bad[i]);
    cw_reject_t why = with(f);
    if (why != CW_REJ_INVALID_JSON) {
      cw_test_fail(__FILE__, __LINE__, "v:%s gave %s", bad[i], cw_reject_name(why));
      return;
    }
  }
  CHECK_REJ(with("\"v\":-0"), CW_REJ_OK);
  CHECK_REJ(with("\"v\":0.0"), CW_REJ_OK);
  CHECK_REJ(with("\"v\":2.3E2"), CW_REJ_OK);
  CHECK_REJ(with("\"v\":23e+1"), CW_REJ_OK);
  CHECK_REJ(with("\"v\":2300e-1"), CW_REJ_OK);
  CHECK_REJ(one("{\"ts\":1764374400.123e3,\"v\":1}"), CW_REJ_OK); /* integral after all */
}

CW_TEST(decode_deep_nesting) {
  size_t n = 5000;
  char *p = malloc(2 * n + 64);
  CHECK(p != NULL);
  memset(p, '[', n);
  CHECK_EQ(one_n(p, n), CW_REJ_INVALID_JSON);
  memset(p + n, ']', n);
  CHECK_EQ(one_n(p, 2 * n), CW_REJ_INVALID_JSON); /* over CJSON_NESTING_LIMIT */
  for (size_t i = 0; i < n; i++) p[i] = i % 2 ? '[' : '{';
  CHECK_EQ(one_n(p, n), CW_REJ_INVALID_JSON);
  /* Nesting well under the limit inside an unknown field is fine. */
  int k = snprintf(p, 64, "{\"ts\":" TS ",\"v\":1,\"x\":");
  memset(p + k, '[', 500);
  memset(p + k + 500, ']', 500);
  p[k + 1000] = '}';
  CHECK_EQ(one_n(p, (size_t)k + 1001), CW_REJ_OK);
  free(p);
}

CW_TEST(decode_non_finite) {
  CHECK_REJ(with("\"v\":1e999"), CW_REJ_NON_FINITE);
  CHECK_REJ(with("\"t\":-1e999"), CW_REJ_NON_FINITE);
  CHECK_REJ(with("\"wh\":1e400"), CW_REJ_NON_FINITE);
  CHECK_REJ(with("\"v\":1,\"smoke\":1e999"), CW_REJ_NON_FINITE);
  CHECK_REJ(with("\"v\":1,\"socket\":-1e999"), CW_REJ_NON_FINITE);
  CHECK_REJ(one("{\"ts\":1e999,\"v\":1}"), CW_REJ_NON_FINITE);
  /* 1e-999 underflows to 0: finite and in range. */
  CHECK_REJ(with("\"v\":1e-999"), CW_REJ_OK);
}

CW_TEST(decode_wrong_type) {
  CHECK_REJ(with("\"v\":\"230\""), CW_REJ_WRONG_TYPE);
  CHECK_REJ(with("\"v\":null"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(with("\"a\":true"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(with("\"w\":[1]"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(with("\"t\":{\"c\":1}"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(with("\"v\":1,\"state\":1"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(with("\"v\":1,\"stop\":true"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(one("{\"ts\":\"" TS "\",\"v\":1}"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(one("{\"ts\":1764374400123.5,\"v\":1}"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(one("{\"ts\":1.5,\"v\":1}"), CW_REJ_WRONG_TYPE);
  CHECK_REJ(one("{\"ts\":null,\"v\":1}"), CW_REJ_WRONG_TYPE);
}

CW_TEST(decode_ts_int64_exact) {
  /* 2^53 + 2 is representable as a double but beyond exact integers. */
  CHECK_REJ(one("{\"ts\":9007199254740994,\"v\":1}"), CW_REJ_OUT_OF_RANGE);
  CHECK_REJ(one("{\"ts\":-9007199254740994,\"v\":1}"), CW_REJ_OUT_OF_RANGE);
  CHECK_REJ(one("{\"ts\":1e300,\"v\":1}"), CW_REJ_OUT_OF_RANGE);
  /* 2^53 itself is exact: then only far in the future. */
  CHECK_REJ(one("{\"ts\":9007199254740992,\"v\":1}"), CW_REJ_FUTURE_TS);
  CHECK_REJ(one("{\"ts\":-9007199254740992,\"v\":1}"), CW_REJ_TOO_OLD);
  CHECK_REJ(one("{\"ts\":0,\"v\":1}"), CW_REJ_TOO_OLD);
}

CW_TEST(decode_range_boundaries) {
  struct { const char *f; cw_reject_t want; } c[] = {
      {"\"v\":400", CW_REJ_OK},        {"\"v\":400.01", CW_REJ_OUT_OF_RANGE},
      {"\"v\":0", CW_REJ_OK},          {"\"v\":-0.01", CW_REJ_OUT_OF_RANGE},
      {"\"a\":100", CW_REJ_OK},        {"\"a\":100.001", CW_REJ_OUT_OF_RANGE},
      {"\"a\":-1", CW_REJ_OUT_OF_RANGE},
      {"\"w\":30000", CW_REJ_OK},      {"\"w\":30000.5", CW_REJ_OUT_OF_RANGE},
      {"\"w\":-0.5", CW_REJ_OUT_OF_RANGE},
      {"\"wh\":0", CW_REJ_OK},         {"\"wh\":1e9", CW_REJ_OK},
      {"\"wh\":1000000001", CW_REJ_OUT_OF_RANGE}, {"\"wh\":-1", CW_REJ_OUT_OF_RANGE},
      {"\"t\":-50", CW_REJ_OK},        {"\"t\":-50.1", CW_REJ_OUT_OF_RANGE},
      {"\"t\":1200", CW_REJ_OK},       {"\"t\":1200.5", CW_REJ_OUT_OF_RANGE},
      {"\"t_amb\":-50", CW_REJ_OK},    {"\"t_amb\":-51", CW_REJ_OUT_OF_RANGE},
      {"\"t_amb\":1200", CW_REJ_OK},   {"\"t_amb\":1201", CW_REJ_OUT_OF_RANGE},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    cw_reject_t why = with(c[i].f);
    if (why != c[i].want) {
      cw_test_fail(__FILE__, __LINE__, "%s gave %s", c[i].f, cw_reject_name(why));
      return;
    }
  }
}

CW_TEST(decode_smoke_forms) {
  sink_t s;
  struct { const char *f; cw_reject_t want; int smoke; } c[] = {
      {"\"smoke\":true", CW_REJ_OK, 1},  {"\"smoke\":false", CW_REJ_OK, 0},
      {"\"smoke\":1", CW_REJ_OK, 1},     {"\"smoke\":0", CW_REJ_OK, 0},
      {"\"smoke\":1.0", CW_REJ_OK, 1},   {"\"smoke\":2", CW_REJ_OUT_OF_RANGE, 0},
      {"\"smoke\":0.5", CW_REJ_OUT_OF_RANGE, 0}, {"\"smoke\":-1", CW_REJ_OUT_OF_RANGE, 0},
      {"\"smoke\":\"1\"", CW_REJ_WRONG_TYPE, 0}, {"\"smoke\":null", CW_REJ_WRONG_TYPE, 0},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    char buf[128];
    snprintf(buf, sizeof buf, "{\"ts\":" TS ",%s}", c[i].f);
    decode(&s, SOCK_TOPIC, buf);
    if (s.n != 1 || s.why[0] != c[i].want ||
        (c[i].want == CW_REJ_OK && (s.r[0].smoke != c[i].smoke || s.r[0].have != CW_HAVE_SMOKE))) {
      cw_test_fail(__FILE__, __LINE__, "%s gave %s", c[i].f, cw_reject_name(s.why[0]));
      return;
    }
  }
}

CW_TEST(decode_state_and_stop) {
  sink_t s;
  static const char *states[] = {"idle", "charging", "full", "fault"};
  static const char *stops[] = {"", "full", "time", "manual", "unplugged", "over_power",
                                "over_temp", "smoke"};
  char buf[128];
  for (int i = 0; i < 4; i++) {
    snprintf(buf, sizeof buf, "{\"ts\":" TS ",\"w\":5,\"state\":\"%s\"}", states[i]);
    CHECK_EQ(decode(&s, SOCK_TOPIC, buf), 1);
    CHECK_EQ(s.r[0].state, i);
    CHECK(s.r[0].have & CW_HAVE_STATE);
  }
  for (int i = 1; i < 8; i++) {
    snprintf(buf, sizeof buf, "{\"ts\":" TS ",\"w\":5,\"stop\":\"%s\"}", stops[i]);
    CHECK_EQ(decode(&s, SOCK_TOPIC, buf), 1);
    CHECK_EQ(s.r[0].stop, i);
    CHECK(s.r[0].have & CW_HAVE_STOP);
  }
  CHECK_REJ(with("\"w\":5,\"state\":\"Charging\""), CW_REJ_OUT_OF_RANGE);
  CHECK_REJ(with("\"w\":5,\"state\":\"\""), CW_REJ_OUT_OF_RANGE);
  CHECK_REJ(with("\"w\":5,\"stop\":\"none\""), CW_REJ_OUT_OF_RANGE);
  CHECK_REJ(with("\"w\":5,\"stop\":\"idle\""), CW_REJ_OUT_OF_RANGE);
}

CW_TEST(decode_missing_ts_and_measurement) {
  CHECK_REJ(one("{\"v\":230}"), CW_REJ_MISSING_TS);
  CHECK_REJ(one("{}"), CW_REJ_MISSING_TS);
  CHECK_REJ(one("{\"TS\":" TS ",\"v\":230}"), CW_REJ_MISSING_TS); /* keys are case-sensitive */
  CHECK_REJ(one("{\"ts\":" TS "}"), CW_REJ_NO_MEASUREMENT);
  CHECK_REJ(with("\"state\":\"idle\",\"stop\":\"full\",\"x\":1"), CW_REJ_NO_MEASUREMENT);
  CHECK_REJ(with("\"smoke\":false"), CW_REJ_OK); /* smoke is a measurement */
  CHECK_REJ(with("\"t_amb\":20"), CW_REJ_OK);
  CHECK_REJ(with("\"wh\":0"), CW_REJ_OK);
}

CW_TEST(decode_not_object) {
  sink_t s;
  CHECK_REJ(one("5"), CW_REJ_NOT_OBJECT);
  CHECK_REJ(one("\"x\""), CW_REJ_NOT_OBJECT);
  CHECK_REJ(one("null"), CW_REJ_NOT_OBJECT);
  CHECK_REJ(one("true"), CW_REJ_NOT_OBJECT);
  CHECK_EQ(decode(&s, SOCK_TOPIC, "[1,[{\"ts\":" TS ",\"v\":1}],null]"), 0);
  CHECK_EQ(s.n, 3);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(s.why[i], CW_REJ_NOT_OBJECT);
    CHECK_EQ(s.idx[i], i);
  }
}

CW_TEST(decode_socket_field_values) {
  sink_t s;
  const char *bad[] = {"0", "256", "99999999999", "-1", "\"7\"", "7.5", "null", "true", "[7]"};
  char buf[128];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(buf, sizeof buf, "{\"ts\":" TS ",\"v\":1,\"socket\":%s}", bad[i]);
    decode(&s, STATION_TOPIC, buf);
    if (s.n != 1 || s.why[0] != CW_REJ_BAD_SOCKET) {
      cw_test_fail(__FILE__, __LINE__, "socket %s gave %s", bad[i], cw_reject_name(s.why[0]));
      return;
    }
  }
  CHECK_EQ(decode(&s, STATION_TOPIC, "{\"ts\":" TS ",\"v\":1,\"socket\":255}"), 1);
  CHECK_EQ(s.r[0].socket, 255);
  CHECK_EQ(decode(&s, STATION_TOPIC, "{\"ts\":" TS ",\"v\":1,\"socket\":1.0}"), 1);
  CHECK_EQ(s.r[0].socket, 1);
  CHECK_STR(s.r[0].station, "CX-0423");
  /* Station topic, single object without socket. */
  CHECK_EQ(decode(&s, STATION_TOPIC, "{\"ts\":" TS ",\"v\":1}"), 0);
  CHECK_EQ(s.why[0], CW_REJ_BAD_SOCKET);
}

CW_TEST(decode_socket_topic_socket_field) {
  sink_t s;
  CHECK_REJ(with("\"v\":1,\"socket\":7"), CW_REJ_OK);
  CHECK_REJ(with("\"v\":1,\"socket\":8"), CW_REJ_BAD_SOCKET);
  CHECK_REJ(with("\"v\":1,\"socket\":0"), CW_REJ_BAD_SOCKET);
  CHECK_EQ(decode(&s, "cw/S/200/telemetry", "{\"ts\":" TS ",\"v\":1}"), 1);
  CHECK_EQ(s.r[0].socket, 200);
  CHECK_STR(s.r[0].station, "S");
}

CW_TEST(decode_station_array) {
  sink_t s;
  const char *p = "[{\"ts\":" TS ",\"socket\":1,\"w\":10},"
                  "{\"ts\":" TS ",\"socket\":2,\"w\":20},"
                  "{\"ts\":" TS ",\"w\":30},"
                  "{\"ts\":" TS ",\"socket\":10,\"w\":40}]";
  CHECK_EQ(decode(&s, STATION_TOPIC, p), 3);
  CHECK_EQ(s.n, 4);
  int sockets[] = {1, 2, -1, 10};
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(s.idx[i], i);
    if (sockets[i] < 0) {
      CHECK_EQ(s.why[i], CW_REJ_BAD_SOCKET);
    } else {
      CHECK_EQ(s.why[i], CW_REJ_OK);
      CHECK_EQ(s.r[i].socket, sockets[i]);
      CHECK_NEAR(s.r[i].w, 10 * (i + 1), 1e-6);
      CHECK_STR(s.r[i].station, "CX-0423");
    }
  }
}

CW_TEST(decode_mixed_array) {
  sink_t s;
  const char *p = "[{\"ts\":" TS ",\"v\":230},"
                  "{\"v\":1},"
                  "5,"
                  "{\"ts\":" TS ",\"v\":500},"
                  "{\"ts\":" TS ",\"v\":1e999},"
                  "{\"ts\":" TS ",\"t\":\"hot\"},"
                  "{\"ts\":" TS ",\"a\":2}]";
  cw_reject_t want[] = {CW_REJ_OK, CW_REJ_MISSING_TS, CW_REJ_NOT_OBJECT, CW_REJ_OUT_OF_RANGE,
                        CW_REJ_NON_FINITE, CW_REJ_WRONG_TYPE, CW_REJ_OK};
  CHECK_EQ(decode(&s, SOCK_TOPIC, p), 2);
  CHECK_EQ(s.n, 7);
  for (int i = 0; i < 7; i++) {
    CHECK_EQ(s.idx[i], i);
    CHECK_EQ(s.why[i], want[i]);
  }
  CHECK_EQ(s.r[0].socket, 7); /* socket topic array: socket from the topic */
  CHECK_NEAR(s.r[6].a, 2, 1e-9);
}

CW_TEST(decode_time_bounds) {
  cw_decode_cfg_t cfg;
  cw_decode_cfg_defaults(&cfg);
  CHECK_EQ(cfg.max_future_ms, 300000);
  CHECK_EQ(cfg.max_age_ms, 604800000LL);
  char buf[128];
  struct { long long ts; cw_reject_t want; } c[] = {
      {NOW + 300000, CW_REJ_OK},      {NOW + 300001, CW_REJ_FUTURE_TS},
      {NOW - 604800000LL, CW_REJ_OK}, {NOW - 604800001LL, CW_REJ_TOO_OLD},
      {NOW, CW_REJ_OK},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    snprintf(buf, sizeof buf, "{\"ts\":%lld,\"v\":1}", c[i].ts);
    CHECK_REJ(one(buf), c[i].want);
  }
  /* Configured bounds are honoured. */
  sink_t s;
  cfg.max_future_ms = 0;
  snprintf(buf, sizeof buf, "{\"ts\":%lld,\"v\":1}", NOW + 1);
  decode_n(&s, &cfg, SOCK_TOPIC, buf, strlen(buf));
  CHECK_EQ(s.why[0], CW_REJ_FUTURE_TS);
}

CW_TEST(decode_duplicate_keys) {
  CHECK_REJ(with("\"t\":30,\"t\":95"), CW_REJ_INVALID_JSON);
  CHECK_REJ(one("{\"ts\":" TS ",\"ts\":" TS ",\"v\":1}"), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"smoke\":0,\"smoke\":1"), CW_REJ_INVALID_JSON);
  CHECK_REJ(with("\"v\":1,\"x\":1,\"x\":2"), CW_REJ_OK); /* unknown keys: ignored */
}

CW_TEST(decode_unknown_fields_ignored) {
  sink_t s;
  const char *p = "{\"fw\":\"1.2.3\",\"ts\":" TS ",\"meta\":{\"v\":999,\"ts\":\"x\"},"
                  "\"list\":[1,\"two\",null,true,{}],\"vv\":\"no\",\"t2\":1e999,\"v\":12}";
  CHECK_EQ(decode(&s, SOCK_TOPIC, p), 1);
  CHECK_EQ(s.r[0].have, CW_HAVE_V);
  CHECK_NEAR(s.r[0].v, 12, 1e-9);
}

CW_TEST(decode_bad_topic) {
  sink_t s;
  const char *p = "{\"ts\":" TS ",\"v\":1}";
  const char *bad[] = {"cw/CX/7", "cw/CX/7/telemetry/extra", "cw/CX/0/telemetry",
                       "cw/CX/256/telemetry", "cw/CX/07/telemetry", "cw/CX/+/telemetry",
                       "cw/#", "cw/CX/7/telemetry/", "cw//telemetry", "", "cw/CX/x/telemetry",
                       "cw/abcdefghijABCDEFGHIJ0123456789_-x/telemetry", "other/CX/telemetry"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int acc = decode(&s, bad[i], p);
    if (acc != 0 || s.n != 1 || s.why[0] != CW_REJ_BAD_TOPIC || s.idx[0] != -1) {
      cw_test_fail(__FILE__, __LINE__, "topic \"%s\" gave %s", bad[i], cw_reject_name(s.why[0]));
      return;
    }
  }
  /* 32-character station: fine (on the station topic it needs a socket). */
  CHECK_EQ(decode(&s, "cw/abcdefghijABCDEFGHIJ0123456789_-/3/telemetry", p), 1);
  CHECK_STR(s.r[0].station, "abcdefghijABCDEFGHIJ0123456789_-");
  /* Topic checked before payload: bad topic wins over bad JSON. */
  decode(&s, "cw/CX", "{");
  CHECK_EQ(s.why[0], CW_REJ_BAD_TOPIC);
}

CW_TEST(decode_custom_patterns) {
  cw_decode_cfg_t cfg;
  sink_t s;
  const char *p = "{\"ts\":" TS ",\"v\":1,\"socket\":4}";
  cw_decode_cfg_defaults(&cfg);
  CHECK_EQ(cw_topic_compile(&cfg.socket_topic, "site/{station}/plug/{socket}/data"), 0);
  CHECK_EQ(cw_topic_compile(&cfg.station_topic, "{station}/x"), 0);
  CHECK_EQ(decode_n(&s, &cfg, "site/S9/plug/4/data", p, strlen(p)), 1);
  CHECK_EQ(s.r[0].socket, 4);
  CHECK_STR(s.r[0].station, "S9");
  CHECK_EQ(decode_n(&s, &cfg, "site/S9/plug/5/data", p, strlen(p)), 0);
  CHECK_EQ(s.why[0], CW_REJ_BAD_SOCKET);
  CHECK_EQ(decode_n(&s, &cfg, "S9/x", p, strlen(p)), 1);
  CHECK_EQ(s.r[0].socket, 4);
  CHECK_EQ(decode_n(&s, &cfg, "cw/S9/4/telemetry", p, strlen(p)), 0);
  CHECK_EQ(s.why[0], CW_REJ_BAD_TOPIC);
  CHECK_EQ(decode_n(&s, &cfg, "S9/x/", p, strlen(p)), 0);
  CHECK_EQ(s.why[0], CW_REJ_BAD_TOPIC);
}

CW_TEST(decode_strict_check_api) {
  const char *ok[] = {"{}", "[]", "{\"a\":\"\\u00e9\\n\"}", "[-0.5e-3,0,1E+2]", " \t\r\n{} ",
                      "\"caf\xc3\xa9\""};
  const char *bad[] = {"{\"a\":\"\x01\"}", "[01]", "[1.]", "{\"a\":\"\\q\"}", "\"\xff\"",
                       "\"unterminated", "[\v]"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) CHECK_EQ(cw_json_strict_check(ok[i], strlen(ok[i])), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ(cw_json_strict_check(bad[i], strlen(bad[i])), -EINVAL);
  CHECK_EQ(cw_json_strict_check("", 0), 0);
}

CW_TEST(decode_null_callback) {
  cw_decode_cfg_t cfg;
  cw_decode_cfg_defaults(&cfg);
  const char *p = "[{\"ts\":" TS ",\"v\":1},{\"ts\":" TS ",\"v\":2},{\"v\":3}]";
  CHECK_EQ(cw_decode(&cfg, SOCK_TOPIC, strlen(SOCK_TOPIC), p, strlen(p), NOW, NULL, NULL), 2);
}
