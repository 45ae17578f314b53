/* alerts.c - the main loop's alert sinks. Workers push alert events into
 * their own alert rings and wake this side with uv_async; here each event
 * goes to the alert log (text or JSON line), to MQTT (QoS 1, retained on
 * {topic_prefix}/{station}/{socket}/{kind}) and to the writer for the alerts
 * tables. Also the operator command path (ack/close from cmd_topic) and the
 * rendering of an event as the alert JSON of DESIGN.md section 3. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

#define OWNER_BUCKETS 1024
#define OWNER_MAX 65536 /* bound; past it the map is reset and commands go to every worker */

typedef struct owner {
  struct owner *next;
  int64_t id;
  int worker;
} owner_t;

struct cw_alerts {
  cw_daemon_t *d;
  uv_async_t async;
  int async_open;
  FILE *log;
  int log_is_stdout;
  owner_t *owners[OWNER_BUCKETS]; /* alert id -> owning worker (main loop only) */
  size_t nowners;
};

/* ---------------------------------------------------------------- render */

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
  if (cw__escape(tmp, sizeof tmp, s, len, CW_ESC_JSON) < 0) b->err = 1;
  else puts_(b, tmp);
}

int cw_alert_json(const cw_alert_event_t *ev, char *out, size_t cap) {
  buf_t b = {out, cap, 0, 0};
  if (cap == 0) return -ENOSPC;
  out[0] = 0;
  putf(&b, "{\"id\":%lld,\"kind\":\"%s\",\"severity\":\"%s\",\"event\":\"%s\",\"state\":\"%s\","
           "\"station\":\"",
       (long long)ev->id, cw_kind_name(ev->kind), cw_severity_name(ev->severity),
       cw_event_name(ev->event), cw_alert_state_name(ev->state));
  put_esc(&b, ev->station, sizeof ev->station);
  putf(&b, "\",\"socket\":%u,\"ts\":%lld,\"value\":", (unsigned)ev->socket, (long long)ev->ts_ms);
  put_num(&b, ev->value);
  puts_(&b, ",\"threshold\":");
  put_num(&b, ev->threshold);
  puts_(&b, ",\"unit\":\"");
  put_esc(&b, ev->unit, sizeof ev->unit);
  if (ev->by[0]) {
    puts_(&b, "\",\"by\":\"");
    put_esc(&b, ev->by, sizeof ev->by);
  }
  puts_(&b, "\",\"message\":\"");
  put_esc(&b, ev->message, sizeof ev->message);
  puts_(&b, "\"}");
  return b.err ? -ENOSPC : (int)b.n;
}

int cw_alert_text(const cw_alert_event_t *ev, int utc_offset_min, char *out, size_t cap) {
  buf_t b = {out, cap, 0, 0};
  char ts[48], sev[16];
  if (cap == 0) return -ENOSPC;
  out[0] = 0;
  if (cw__iso_time(ts, sizeof ts, ev->ts_ms, utc_offset_min) < 0) return -ENOSPC;
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
  if (ev->by[0]) {
    puts_(&b, " by=\"");
    put_esc(&b, ev->by, sizeof ev->by);
    puts_(&b, "\"");
  }
  puts_(&b, " \"");
  put_esc(&b, ev->message, sizeof ev->message);
  puts_(&b, "\"");
  return b.err ? -ENOSPC : (int)b.n;
}

/* ---------------------------------------------------------------- owners */

static void owner_set(cw_alerts_t *a, int64_t id, int worker) {
  size_t h = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 54) % OWNER_BUCKETS;
  for (owner_t *o = a->owners[h]; o; o = o->next)
    if (o->id == id) return (void)(o->worker = worker);
  if (a->nowners >= OWNER_MAX) {
    /* bound: forget everything; commands for forgotten ids go to all workers */
    for (size_t i = 0; i < OWNER_BUCKETS; i++)
      while (a->owners[i]) {
        owner_t *n = a->owners[i]->next;
        free(a->owners[i]);
        a->owners[i] = n;
      }
    a->nowners = 0;
  }
  owner_t *o = malloc(sizeof *o);
  if (!o) return; /* only an optimisation */
  o->id = id;
  o->worker = worker;
  o->next = a->owners[h];
  a->owners[h] = o;
  a->nowners++;
}

static int owner_get(cw_alerts_t *a, int64_t id, int del) {
  size_t h = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 54) % OWNER_BUCKETS;
  for (owner_t **p = &a->owners[h]; *p; p = &(*p)->next) {
    if ((*p)->id != id) continue;
    int w = (*p)->worker;
    if (del) {
      owner_t *o = *p;
      *p = o->next;
      free(o);
      a->nowners--;
    }
    return w;
  }
  return -1;
}

/* ---------------------------------------------------------------- sinks */

static int local_offset_min(int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  localtime_r(&t, &tm);
  return (int)(tm.tm_gmtoff / 60);
}

static void open_log(cw_alerts_t *a) {
  const char *path = a->d->cfg.alert_log;
  a->log_is_stdout = !strcmp(path, "-");
  if (a->log_is_stdout) {
    a->log = stdout;
    return;
  }
  if (!*path) {
    a->log = NULL;
    return;
  }
  a->log = fopen(path, "ae");
  if (!a->log) cw_log(CW_LOG_ERROR, "alerts: cannot open alert log %s: %s", path, strerror(errno));
}

static void close_log(cw_alerts_t *a) {
  if (a->log && !a->log_is_stdout) fclose(a->log);
  else if (a->log) fflush(a->log);
  a->log = NULL;
}

static void sink_event(cw_alerts_t *a, const cw_alert_event_t *ev) {
  cw_daemon_t *d = a->d;
  const cw_config_t *c = &d->cfg;
  char json[1024], line[1200], topic[512];
  int jn = cw_alert_json(ev, json, sizeof json);

  if ((unsigned)ev->kind < CW_KIND__COUNT && (unsigned)ev->severity < 3)
    atomic_fetch_add(&d->m.alert_events[ev->kind][ev->severity], 1);
  if (ev->event == CW_EV_CLOSED) owner_get(a, ev->id, 1);
  else owner_set(a, ev->id, cw_daemon_route(d, ev->station, strnlen(ev->station, CW_STATION_MAX)));

  /* (a) alert log */
  if (a->log) {
    int ln = c->alert_log_format == CW_LOG_JSON
                 ? jn
                 : cw_alert_text(ev, local_offset_min(ev->ts_ms), line, sizeof line);
    const char *src = c->alert_log_format == CW_LOG_JSON ? json : line;
    if (ln >= 0) {
      fwrite(src, 1, (size_t)ln, a->log);
      fputc('\n', a->log);
    }
  }
  /* (b) MQTT, retained so a late subscriber sees every open alert. The
   * station is a topic level: only names that cannot carry '/', '+', '#'. */
  if (d->mqtt && jn >= 0 && cw_station_valid(ev->station, strnlen(ev->station, CW_STATION_MAX))) {
    snprintf(topic, sizeof topic, "%s/%s/%u/%s", c->alert_topic_prefix, ev->station,
             (unsigned)ev->socket, cw_kind_name(ev->kind));
    cw_mqtt_publish(d->mqtt, topic, json, (size_t)jn, c->alert_retain);
    if (ev->event == CW_EV_CLOSED && c->alert_retain)
      cw_mqtt_publish(d->mqtt, topic, "", 0, 1); /* clears the retained copy */
    if (c->alert_actuate && ev->severity == CW_SEV_CRITICAL && ev->socket &&
        (ev->event == CW_EV_RAISED || ev->event == CW_EV_ESCALATED)) {
      char cmd[160];
      int cn = snprintf(cmd, sizeof cmd,
                        "{\"cmd\":\"cut_power\",\"alert_id\":%lld,\"station\":\"%s\",\"socket\":%u}",
                        (long long)ev->id, ev->station, (unsigned)ev->socket);
      snprintf(topic, sizeof topic, "cw/%s/%u/cmd", ev->station, (unsigned)ev->socket);
      if (cn > 0 && (size_t)cn < sizeof cmd) cw_mqtt_publish(d->mqtt, topic, cmd, (size_t)cn, 0);
    }
  }
  /* (c) database */
  if (d->writer) cw_writer_store_alert(d->writer, ev);
}

typedef struct {
  cw_alerts_t *a;
  size_t n;
} visit_t;

static int visit(void *ctx, const void *rec, size_t len) {
  visit_t *v = ctx;
  cw_alert_event_t ev;
  if (len != sizeof ev) return 0; /* cannot happen: workers push whole events */
  memcpy(&ev, rec, sizeof ev);    /* records are not aligned for the struct */
  sink_event(v->a, &ev);
  v->n++;
  return 0;
}

void cw_alerts_drain(cw_alerts_t *a) {
  visit_t v = {a, 0};
  size_t got;
  /* Until every ring is empty: a producer only wakes us on empty->non-empty,
   * so leaving records behind would leave them until the next alert. */
  do {
    got = 0;
    for (int i = 0; i < a->d->nworkers; i++) {
      if (!a->d->workers || !a->d->workers[i]) continue;
      got += cw_ring_pop_burst(cw_worker_alert_ring(a->d->workers[i]), 64, visit, &v);
    }
  } while (got);
  if (v.n && a->log) fflush(a->log);
}

static void on_async(uv_async_t *h) { cw_alerts_drain(h->data); }

int cw_alerts_create(cw_daemon_t *d, cw_alerts_t **out) {
  cw_alerts_t *a = calloc(1, sizeof *a);
  int rc;
  if (!a) return -ENOMEM;
  a->d = d;
  if (d->loop) {
    if ((rc = uv_async_init(d->loop, &a->async, on_async))) goto fail;
    a->async.data = a;
    a->async_open = 1;
  }
  open_log(a);
  *out = a;
  return 0;
fail:
  free(a);
  return rc;
}

void cw_alerts_wake(cw_alerts_t *a) {
  if (a && a->async_open) uv_async_send(&a->async);
}

void cw_alerts_reopen(cw_alerts_t *a) {
  close_log(a);
  open_log(a);
}

static void reject_cmd(cw_alerts_t *a, cw_reject_t why, const char *detail, const char *payload,
                       size_t len) {
  cw_daemon_t *d = a->d;
  atomic_fetch_add(&d->m.rejects[why], 1);
  cw_log(CW_LOG_WARN, "alerts: command rejected (%s): %s", cw_reject_name(why), detail);
  if (d->deadletter)
    cw_deadletter_write(d->deadletter, why, -1, detail, d->cfg.mqtt_cmd_topic,
                        strlen(d->cfg.mqtt_cmd_topic), payload, len);
}

/* cJSON stops after the first value; anything but whitespace after it is junk */
static int trailing_space(const char *p, const char *end) {
  for (; p && p < end; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return 0;
  return 1;
}

int cw_alerts_command(cw_alerts_t *a, const char *payload, size_t len) {
  cw_daemon_t *d = a->d;
  cJSON *j = NULL;
  const char *end = NULL;
  int rc = -EINVAL;
  if (len == 0 || cw_json_strict_check(payload, len) != 0 ||
      !(j = cJSON_ParseWithLengthOpts(payload, len, &end, 0)) || !trailing_space(end, payload + len)) {
    reject_cmd(a, CW_REJ_INVALID_JSON, "command is not JSON", payload, len);
    goto out;
  }
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
  const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "action");
  const cJSON *by = cJSON_GetObjectItemCaseSensitive(j, "by");
  if (!cJSON_IsObject(j) || !cJSON_IsNumber(id) || !cJSON_IsString(act) ||
      (by && !cJSON_IsString(by)) || !(id->valuedouble >= 1 && id->valuedouble < 9.0e15) ||
      id->valuedouble != floor(id->valuedouble)) {
    reject_cmd(a, CW_REJ_WRONG_TYPE, "expected {\"id\":N,\"action\":\"ack|close\",\"by\":\"..\"}",
               payload, len);
    goto out;
  }
  cw_event_t action;
  if (!strcmp(act->valuestring, "ack")) action = CW_EV_ACKNOWLEDGED;
  else if (!strcmp(act->valuestring, "close")) action = CW_EV_CLOSED;
  else {
    reject_cmd(a, CW_REJ_WRONG_TYPE, "action must be ack or close", payload, len);
    goto out;
  }
  int64_t aid = (int64_t)id->valuedouble;
  int owner = owner_get(a, aid, 0);
  for (int i = 0; i < d->nworkers; i++) {
    if (owner >= 0 && i != owner) continue;
    cw_ctl_t *ctl = calloc(1, sizeof *ctl);
    if (!ctl) {
      rc = -ENOMEM;
      goto out;
    }
    ctl->type = CW_CTL_OPERATOR;
    ctl->alert.id = aid;
    ctl->alert.event = action;
    snprintf(ctl->alert.by, sizeof ctl->alert.by, "%s", by ? by->valuestring : "operator");
    cw_worker_post(d->workers[i], ctl);
  }
  cw_log(CW_LOG_INFO, "alerts: operator %s of alert %lld by %s", act->valuestring, (long long)aid,
         by ? by->valuestring : "operator");
  rc = 0;
out:
  cJSON_Delete(j);
  return rc;
}

static void free_self(uv_handle_t *h) { free(h->data); }

void cw_alerts_free(cw_alerts_t *a) {
  if (!a) return;
  close_log(a);
  for (size_t i = 0; i < OWNER_BUCKETS; i++)
    while (a->owners[i]) {
      owner_t *n = a->owners[i]->next;
      free(a->owners[i]);
      a->owners[i] = n;
    }
  if (a->async_open) {
    /* the handle lives inside a: free it once libuv has let go of it */
    uv_close((uv_handle_t *)&a->async, free_self);
    return;
  }
  free(a);
}
