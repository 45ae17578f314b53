/* decode.c - one MQTT message (topic + JSON payload) into validated readings.
 * cJSON does the parsing; this file adds what cJSON does not check (strict
 * RFC 8259, see strict_scan) and the field rules of docs/ARCHITECTURE.md section 7.
 * Hot path: one pass over the bytes, one cJSON parse without copying the
 * payload (its nodes cut from a per-thread arena, lib/json_arena.h), one walk
 * over each object's members, no allocation of its own. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "decode.h"
#include "json_arena.h"
#include "text.h"

/* Physical ranges (docs/ARCHITECTURE.md section 7 for v, a, w, t). wh: a cumulative
 * meter reading is never negative; 1e9 Wh would take a socket at the 30 kW
 * cap almost four years, so anything above is a corrupt counter. t_amb uses
 * the socket range rather than a weather range on purpose: an ambient sensor
 * next to a burning battery is exactly the reading we must not drop. */
#define V_MAX 400.0
#define A_MAX 100.0
#define W_MAX 30000.0
#define WH_MAX 1e9
#define T_MIN (-50.0)
#define T_MAX 1200.0
/* ts must survive the trip int64 -> double -> int64 exactly: |ts| <= 2^53. */
#define TS_ABS_MAX 9007199254740992.0
#define SOCKET_MAX 255

/* ---- strict RFC 8259 scan ------------------------------------------------
 * cJSON 1.7.15 is lenient where this daemon must not be: it accepts raw
 * control characters inside strings, treats every byte <= 0x20 (NUL, \f, \v,
 * ...) as whitespace, accepts numbers such as 01, 1. and -.5, and does not
 * check UTF-8. The scan rejects all of those. It runs before the parse and
 * keeps no stack: nesting depth is cJSON's business (CJSON_NESTING_LIMIT). */

enum { C_PLAIN = 0, C_QUOTE, C_BSLASH, C_CTRL, C_HIGH };
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
/* Byte classes inside a string: one load per byte on the common path. */
static const unsigned char char_class[256] = {
    R16(C_CTRL), R16(C_CTRL),                                       /* 0x00-0x1f */
    0, 0, C_QUOTE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           /* 0x20-0x2f */
    R16(0), R16(0),                                                 /* 0x30-0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, C_BSLASH, 0, 0, 0,          /* 0x50-0x5f */
    R16(0), R16(0),                                                 /* 0x60-0x7f */
    R16(C_HIGH), R16(C_HIGH), R16(C_HIGH), R16(C_HIGH),             /* 0x80-0xbf */
    R16(C_HIGH), R16(C_HIGH), R16(C_HIGH), R16(C_HIGH),             /* 0xc0-0xff */
};
#undef R16

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 8259 section 6 number grammar from s[0] ('-' or a digit). Returns the
 * length of the number, or 0 if malformed (including when it is followed by
 * another number character, as in "01" or "1.2.3"). */
static size_t number_len(const unsigned char *s, size_t n) {
  size_t j = 0;
  if (s[j] == '-') j++;
  if (j < n && s[j] == '0') j++;
  else if (j < n && s[j] >= '1' && s[j] <= '9')
    while (j < n && is_digit(s[j])) j++;
  else
    return 0;
  if (j < n && s[j] == '.') {
    size_t d = ++j;
    while (j < n && is_digit(s[j])) j++;
    if (j == d) return 0;
  }
  if (j < n && (s[j] == 'e' || s[j] == 'E')) {
    j++;
    if (j < n && (s[j] == '+' || s[j] == '-')) j++;
    size_t d = j;
    while (j < n && is_digit(s[j])) j++;
    if (j == d) return 0;
  }
  if (j < n && (is_digit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '+' ||
                s[j] == '-'))
    return 0;
  return j;
}

/* Returns 0 or -EINVAL; *nul_escape tells whether a "\u0000" escape occurred. */
static int strict_scan(const char *text, size_t len, bool *nul_escape) {
  const unsigned char *p = (const unsigned char *)text;
  size_t i = 0;
  *nul_escape = false;
  while (i < len) {
    unsigned char c = p[i];
    if (c == '"') {
      i++;
      for (;;) {
        while (i < len && char_class[p[i]] == C_PLAIN) i++;
        if (i >= len) return -EINVAL; /* unterminated string */
        unsigned char k = char_class[p[i]];
        if (k == C_QUOTE) {
          i++;
          break;
        } else if (k == C_BSLASH) {
          if (i + 1 >= len) return -EINVAL;
          unsigned char e = p[i + 1];
          if (e == 'u') {
            if (i + 6 > len || !is_hex(p[i + 2]) || !is_hex(p[i + 3]) || !is_hex(p[i + 4]) ||
                !is_hex(p[i + 5]))
              return -EINVAL;
            if (memcmp(p + i + 2, "0000", 4) == 0) *nul_escape = true;
            i += 6;
          } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                     e == 'r' || e == 't') {
            i += 2;
          } else {
            return -EINVAL;
          }
        } else if (k == C_CTRL) {
          return -EINVAL; /* raw control character (or NUL) inside a string */
        } else {
          size_t u = cw_utf8_len(p + i, len - i); /* p[i] >= 0x80 here */
          if (u == 0) return -EINVAL;
          i += u;
        }
      }
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      i++;
    } else if (c < 0x20) {
      return -EINVAL; /* NUL or a control byte cJSON would skip as whitespace */
    } else if (c == '-' || is_digit(c)) {
      size_t n = number_len(p + i, len - i);
      if (n == 0) return -EINVAL;
      i += n;
    } else {
      /* Structure, literals and anything else: cJSON's parser decides. A
       * UTF-8 BOM at offset 0 passes here and cJSON skips it, which RFC 8259
       * section 8.1 allows a parser to do. */
      i++;
    }
  }
  return 0;
}

int cw_json_strict_check(const char *p, size_t len) {
  bool nul_escape;
  if (!p && len) return -EINVAL;
  return strict_scan(p, len, &nul_escape);
}

/* ---- configuration ------------------------------------------------------- */

int cw_decode_cfg_defaults(cw_decode_cfg_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  /* Both literals are valid patterns: compile cannot fail. */
  cw_topic_compile(&cfg->socket_topic, "cw/{station}/{socket}/telemetry");
  cw_topic_compile(&cfg->station_topic, "cw/{station}/telemetry");
  cfg->max_payload = 16384;                     /* docs/ARCHITECTURE.md section 7 */
  cfg->max_age_ms = 7LL * 24 * 3600 * 1000;     /* 7 days, docs/ARCHITECTURE.md section 7 */
  cfg->max_future_ms = 5LL * 60 * 1000;         /* 5 minutes, docs/ARCHITECTURE.md section 7 */
  return 0;
}

/* ---- one reading ---------------------------------------------------------- */

enum field {
  F_UNKNOWN = -1,
  F_V, F_A, F_W, F_WH, F_T, F_T_AMB, /* order matches ranges[] and CW_HAVE_* */
  F_SMOKE, F_STATE, F_STOP, F_TS, F_SOCKET,
};

static const struct { double lo, hi; } ranges[] = {
    [F_V] = {0, V_MAX},   [F_A] = {0, A_MAX},     [F_W] = {0, W_MAX},
    [F_WH] = {0, WH_MAX}, [F_T] = {T_MIN, T_MAX}, [F_T_AMB] = {T_MIN, T_MAX},
};

/* Member name -> field, by first character then the rest: cheaper than
 * strcmp against every known name, and keys are compared once per member. */
static enum field field_of(const char *k) {
  if (!k) return F_UNKNOWN;
  switch (k[0]) {
  case 't':
    if (k[1] == '\0') return F_T;
    if (k[1] == 's' && k[2] == '\0') return F_TS;
    if (strcmp(k + 1, "_amb") == 0) return F_T_AMB;
    break;
  case 'v': if (k[1] == '\0') return F_V; break;
  case 'a': if (k[1] == '\0') return F_A; break;
  case 'w':
    if (k[1] == '\0') return F_W;
    if (k[1] == 'h' && k[2] == '\0') return F_WH;
    break;
  case 's':
    if (strcmp(k + 1, "moke") == 0) return F_SMOKE;
    if (strcmp(k + 1, "tate") == 0) return F_STATE;
    if (strcmp(k + 1, "top") == 0) return F_STOP;
    if (strcmp(k + 1, "ocket") == 0) return F_SOCKET;
    break;
  }
  return F_UNKNOWN;
}

static const char *const state_names[] = {
    [CW_STATE_IDLE] = "idle", [CW_STATE_CHARGING] = "charging",
    [CW_STATE_FULL] = "full", [CW_STATE_FAULT] = "fault"};
static const char *const stop_names[] = {
    [CW_STOP_FULL] = "full",           [CW_STOP_TIME] = "time",
    [CW_STOP_MANUAL] = "manual",       [CW_STOP_UNPLUGGED] = "unplugged",
    [CW_STOP_OVER_POWER] = "over_power", [CW_STOP_OVER_TEMP] = "over_temp",
    [CW_STOP_SMOKE] = "smoke"};

static int name_index(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (names[i] && strcmp(s, names[i]) == 0) return i;
  return -1;
}

static int type_of(const cJSON *it) { return it->type & 0xFF; }

static cw_reject_t decode_object(const cw_decode_cfg_t *cfg, const cJSON *obj,
                                 const char *station, int topic_socket, int64_t now_ms,
                                 cw_reading_t *r) {
  unsigned seen = 0; /* one bit per enum field: duplicate detection */
  int sock = 0;
  if (type_of(obj) != cJSON_Object) return CW_REJ_NOT_OBJECT;
  memset(r, 0, sizeof *r);

  for (const cJSON *it = obj->child; it; it = it->next) {
    enum field f = field_of(it->string);
    if (f == F_UNKNOWN) continue; /* unknown members are ignored (docs/ARCHITECTURE.md section 7) */
    /* Duplicate known member: RFC 8259 section 4 leaves the meaning to the
     * parser and parsers disagree (first wins, last wins), so a producer
     * sending {"t":30,"t":95} cannot know what we read. Reject it. */
    if (seen & (1u << f)) return CW_REJ_INVALID_JSON;
    seen |= 1u << f;
    int ty = type_of(it);
    double d = it->valuedouble;
    switch (f) {
    case F_V: case F_A: case F_W: case F_WH: case F_T: case F_T_AMB:
      if (ty != cJSON_Number) return CW_REJ_WRONG_TYPE;
      if (!isfinite(d)) return CW_REJ_NON_FINITE;
      if (!(d >= ranges[f].lo && d <= ranges[f].hi)) return CW_REJ_OUT_OF_RANGE;
      switch (f) {
      case F_V: r->v = (float)d; break;
      case F_A: r->a = (float)d; break;
      case F_W: r->w = (float)d; break;
      case F_WH: r->wh = d; break;
      case F_T: r->t = (float)d; break;
      default: r->t_amb = (float)d; break;
      }
      r->have |= (uint16_t)(1u << f); /* F_V..F_T_AMB == CW_HAVE_V..CW_HAVE_T_AMB bits */
      break;
    case F_SMOKE:
      if (ty == cJSON_True || ty == cJSON_False) {
        r->smoke = ty == cJSON_True;
      } else if (ty == cJSON_Number) {
        if (!isfinite(d)) return CW_REJ_NON_FINITE;
        if (d != 0 && d != 1) return CW_REJ_OUT_OF_RANGE;
        r->smoke = d == 1;
      } else {
        return CW_REJ_WRONG_TYPE;
      }
      r->have |= CW_HAVE_SMOKE;
      break;
    case F_STATE:
    case F_STOP: {
      if (ty != cJSON_String || !it->valuestring) return CW_REJ_WRONG_TYPE;
      int v = f == F_STATE ? name_index(it->valuestring, state_names, 4)
                           : name_index(it->valuestring, stop_names, 8);
      if (v < 0) return CW_REJ_OUT_OF_RANGE; /* a string, but not one of ours */
      if (f == F_STATE) {
        r->state = (int8_t)v;
        r->have |= CW_HAVE_STATE;
      } else {
        r->stop = (int8_t)v;
        r->have |= CW_HAVE_STOP;
      }
      break;
    }
    case F_TS:
      if (ty != cJSON_Number) return CW_REJ_WRONG_TYPE;
      if (!isfinite(d)) return CW_REJ_NON_FINITE;
      if (d != trunc(d)) return CW_REJ_WRONG_TYPE; /* 1.5 is not a millisecond count */
      if (fabs(d) > TS_ABS_MAX) return CW_REJ_OUT_OF_RANGE;
      r->ts_ms = (int64_t)d;
      break;
    case F_SOCKET:
      /* Every way of not naming a socket 1..255 is bad_socket, except
       * NaN/inf, which is non_finite wherever it appears. */
      if (ty != cJSON_Number) return CW_REJ_BAD_SOCKET;
      if (!isfinite(d)) return CW_REJ_NON_FINITE;
      if (d != trunc(d) || d < 1 || d > SOCKET_MAX) return CW_REJ_BAD_SOCKET;
      sock = (int)d;
      break;
    case F_UNKNOWN:
      break;
    }
  }

  if (!(seen & (1u << F_TS))) return CW_REJ_MISSING_TS;
  if (topic_socket > 0) {
    if ((seen & (1u << F_SOCKET)) && sock != topic_socket) return CW_REJ_BAD_SOCKET;
    sock = topic_socket;
  } else if (!(seen & (1u << F_SOCKET))) {
    return CW_REJ_BAD_SOCKET; /* station topic: each reading must say which socket */
  }
  if (!(r->have & CW_HAVE_MEASUREMENT)) return CW_REJ_NO_MEASUREMENT;
  /* Unsigned differences: no overflow whatever now_ms the caller passes. The
   * bounds themselves are accepted (ts == now + max_future is in time). */
  if (r->ts_ms > now_ms && (uint64_t)r->ts_ms - (uint64_t)now_ms > (uint64_t)cfg->max_future_ms)
    return CW_REJ_FUTURE_TS;
  if (r->ts_ms < now_ms && (uint64_t)now_ms - (uint64_t)r->ts_ms > (uint64_t)cfg->max_age_ms)
    return CW_REJ_TOO_OLD;
  r->socket = (uint8_t)sock;
  memcpy(r->station, station, strlen(station) + 1);
  return CW_REJ_OK;
}

/* ---- one message --------------------------------------------------------- */

static void emit(cw_decode_fn fn, void *ctx, const cw_reading_t *r, cw_reject_t why, int idx) {
  if (fn) fn(ctx, r, why, idx);
}

static bool json_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Threads: cw_decode keeps no state, but cJSON 1.7.15 resets a global error
 * record on every parse, so parses on several workers at once race on it
 * (benign on x86: nothing reads cJSON_GetErrorPtr; TSan sees it only with an
 * instrumented cJSON). */
int cw_decode(const cw_decode_cfg_t *cfg, const char *topic, size_t topic_len,
              const void *payload, size_t len, int64_t now_ms, cw_decode_fn fn, void *ctx) {
  char station[CW_STATION_MAX + 1];
  int topic_socket = 0, accepted = 0;
  const char *p = payload;
  cw_reading_t r;
  cJSON *root = NULL;
  bool nul_escape;

  if (cw_topic_match(&cfg->socket_topic, topic, topic_len, station, &topic_socket) != CW_REJ_OK &&
      cw_topic_match(&cfg->station_topic, topic, topic_len, station, &topic_socket) != CW_REJ_OK) {
    emit(fn, ctx, NULL, CW_REJ_BAD_TOPIC, -1);
    return 0;
  }
  if (len == 0 || !p) {
    emit(fn, ctx, NULL, CW_REJ_EMPTY, -1);
    return 0;
  }
  /* Before parsing: the bound is what keeps parse cost and memory bounded. */
  if (len > cfg->max_payload) {
    emit(fn, ctx, NULL, CW_REJ_OVERSIZE, -1);
    return 0;
  }
  /* A "\u0000" escape is valid JSON, but cJSON keeps strings NUL-terminated,
   * so "ts\u0000x" would read as the key "ts" and "idle\u0000x" as the state
   * idle. No producer has a reason to send one: reject rather than misread. */
  if (strict_scan(p, len, &nul_escape) != 0 || nul_escape) goto invalid;
  const char *end = NULL;
  root = cw_json_parse(p, len, &end);
  if (!root || !end || end < p || end > p + len) goto invalid;
  /* require_null_terminated cannot be used (MQTT payloads carry no NUL), so
   * check here that only whitespace follows the value. */
  for (const char *q = end; q < p + len; q++)
    if (!json_ws((unsigned char)*q)) goto invalid;

  if (type_of(root) == cJSON_Object) {
    cw_reject_t why = decode_object(cfg, root, station, topic_socket, now_ms, &r);
    emit(fn, ctx, why == CW_REJ_OK ? &r : NULL, why, -1);
    accepted = why == CW_REJ_OK;
  } else if (type_of(root) == cJSON_Array) {
    int idx = 0;
    for (const cJSON *el = root->child; el; el = el->next, idx++) {
      cw_reject_t why = decode_object(cfg, el, station, topic_socket, now_ms, &r);
      emit(fn, ctx, why == CW_REJ_OK ? &r : NULL, why, idx);
      accepted += why == CW_REJ_OK;
    }
    /* "[]" carries no reading; report it so every message leaves a trace. */
    if (idx == 0) emit(fn, ctx, NULL, CW_REJ_EMPTY, -1);
  } else {
    emit(fn, ctx, NULL, CW_REJ_NOT_OBJECT, -1);
  }
  cw_json_release(root);
  return accepted;

invalid:
  cw_json_release(root);
  emit(fn, ctx, NULL, CW_REJ_INVALID_JSON, -1);
  return 0;
}
