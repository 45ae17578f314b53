/* alert_render.c - an alert event as the alert JSON (docs/ARCHITECTURE.md,
 * "Alert messages") and as a line of the text alert log. Pure: no I/O, no
 * state; any thread. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_render.h"
#include "text.h"

/* Shortest decimal that gives back the same float: readings are floats, so
 * more digits would only print conversion noise (3.2f is 3.2000000476...).
 * Always has a '.' or an exponent so it reads as a real; NaN/inf are null
 * (JSON has no spelling for them). */
static int fmt_num(char *out, size_t cap, double v) {
  int n = 0;
  if (!isfinite(v)) return snprintf(out, cap, "null");
  /* at least as many digits as the integer part, so 1000 is not 1e+03 */
  int p0 = fabs(v) >= 1 ? (int)floor(log10(fabs(v))) + 1 : 1;
  if (p0 > 17) p0 = 17;
  for (int p = p0; p <= 17; p++) {
    n = snprintf(out, cap, "%.*g", p, v);
    if (n < 0 || (size_t)n >= cap) return -ENOSPC;
    double back = strtod(out, NULL);
    if (fabs(v) < 3.0e38 ? (float)back == (float)v : back == v) break;
  }
  if (!strpbrk(out, ".eEn")) {
    if ((size_t)n + 2 >= cap) return -ENOSPC;
    memcpy(out + n, ".0", 3);
    n += 2;
  }
  return n;
}

typedef struct {
  char *p;
  size_t cap, n;
  int err;
} buf_t;

static void put(buf_t *b, const char *s, size_t len) {
  if (b->err || b->n + len >= b->cap) {
    b->err = 1;
    return;
  }
  memcpy(b->p + b->n, s, len);
  b->n += len;
  b->p[b->n] = 0;
}
static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }
static void putf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  if (b->err) return;
  va_start(ap, fmt);
  int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= b->cap - b->n) b->err = 1;
  else b->n += (size_t)k;
}
static void put_num(buf_t *b, double v) {
  char tmp[40];
  if (fmt_num(tmp, sizeof tmp, v) < 0) b->err = 1;
  else puts_(b, tmp);
}
/* Escaped string field content (no quotes). Bounded by the field sizes. */
static void put_esc(buf_t *b, const char *s, size_t maxlen) {
  char tmp[1024];
  size_t len = strnlen(s, maxlen);
  if (cw_escape(tmp, sizeof tmp, s, len, CW_ESC_JSON) < 0) b->err = 1;
  else puts_(b, tmp);
}

int cw_alert_topic(const char *prefix, const cw_alert_event_t *ev, char *out, size_t cap) {
  if (!cw_station_valid(ev->station, strnlen(ev->station, CW_STATION_MAX))) return -EINVAL;
  int n = snprintf(out, cap, "%s/%s/%u/%s", prefix, ev->station, (unsigned)ev->socket,
                   cw_kind_name(ev->kind));
  return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int cw_alert_json(const cw_alert_event_t *ev, char *out, size_t cap) {
  buf_t b = {out, cap, 0, 0};
  if (cap == 0) return -ENOSPC;
  out[0] = 0;
  putf(&b, "{\"id\":%lld,", (long long)ev->id);
  if (ev->ref[0]) {
    puts_(&b, "\"ref\":\"");
    put_esc(&b, ev->ref, sizeof ev->ref);
    puts_(&b, "\",");
  }
  putf(&b, "\"kind\":\"%s\",\"severity\":\"%s\",\"event\":\"%s\",\"state\":\"%s\","
           "\"station\":\"",
       cw_kind_name(ev->kind), cw_severity_name(ev->severity),
       cw_event_name(ev->event), cw_alert_state_name(ev->state));
  put_esc(&b, ev->station, sizeof ev->station);
  putf(&b, "\",\"socket\":%u,\"ts\":%lld,\"value\":", (unsigned)ev->socket, (long long)ev->ts_ms);
  put_num(&b, ev->value);
  puts_(&b, ",\"threshold\":");
  put_num(&b, ev->threshold);
  puts_(&b, ",\"unit\":\"");
  put_esc(&b, ev->unit, sizeof ev->unit);
  putf(&b, "\",\"count\":%u", ev->count ? (unsigned)ev->count : 1u);
  if (ev->by[0]) {
    puts_(&b, ",\"by\":\"");
    put_esc(&b, ev->by, sizeof ev->by);
    puts_(&b, "\"");
  }
  const char *note = cw_alert_event_note(ev);
  if (note) {
    puts_(&b, ",\"note\":\"");
    put_esc(&b, note, sizeof ev->message);
    puts_(&b, "\"");
  }
  puts_(&b, ",\"message\":\"");
  put_esc(&b, ev->message, sizeof ev->message);
  puts_(&b, "\"}");
  return b.err ? -ENOSPC : (int)b.n;
}

/* Quoted, escaped value of a key="..." pair. */
static void put_quoted(buf_t *b, const char *key, const char *s, size_t maxlen) {
  puts_(b, key);
  puts_(b, "\"");
  put_esc(b, s, maxlen);
  puts_(b, "\"");
}

int cw_alert_text(const cw_alert_event_t *ev, int local_offset_min, char *out, size_t cap) {
  buf_t b = {out, cap, 0, 0};
  char ts[48], local[48], sev[16];
  if (cap == 0) return -ENOSPC;
  out[0] = 0;
  /* UTC with a Z, as chargewatch tail prints it (cw_utc_text in SQL) */
  int tn = cw_iso_time(ts, sizeof ts, ev->ts_ms, 0);
  if (tn < 6 || cw_iso_time(local, sizeof local, ev->ts_ms, local_offset_min) < 0) return -ENOSPC;
  memcpy(ts + tn - 6, "Z", 2);
  const char *s = cw_severity_name(ev->severity);
  size_t i = 0;
  for (; s[i] && i < sizeof sev - 1; i++) sev[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
  sev[i] = 0;
  putf(&b, "%s %s %s %s id=%lld station=", ts, sev, cw_kind_name(ev->kind),
       cw_event_name(ev->event), (long long)ev->id);
  put_esc(&b, ev->station, sizeof ev->station);
  putf(&b, " socket=%u state=%s value=", (unsigned)ev->socket, cw_alert_state_name(ev->state));
  put_num(&b, ev->value);
  puts_(&b, " threshold=");
  put_num(&b, ev->threshold);
  puts_(&b, " unit=");
  put_esc(&b, ev->unit, sizeof ev->unit);
  if (ev->count > 1) putf(&b, " count=%u", (unsigned)ev->count);
  if (ev->by[0]) put_quoted(&b, " by=", ev->by, sizeof ev->by);
  const char *note = cw_alert_event_note(ev);
  if (note) put_quoted(&b, " note=", note, sizeof ev->message);
  if (ev->ref[0]) {
    puts_(&b, " ref=");
    put_esc(&b, ev->ref, sizeof ev->ref);
  }
  putf(&b, " local=%s ", local);
  put_quoted(&b, "", ev->message, sizeof ev->message);
  return b.err ? -ENOSPC : (int)b.n;
}
