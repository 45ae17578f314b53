/* control.c - operator commands (control.h): parse, route, post. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_ref.h"
#include "control.h"

#define OWNER_BUCKETS 1024
#define OWNER_MAX 65536 /* bound; past it the map is reset and commands go to every worker */
#define CLOSED_KEEP 256 /* the last closed alerts, to say "already closed" */

typedef struct owner {
  struct owner *next;
  int64_t id;
  int worker;
  char ref[16]; /* its short reference, for commands naming it */
} owner_t;

typedef struct queued {
  struct queued *next;
  const char *source; /* NULL: payload is a restored alert (cw_control_restored) */
  size_t len;
  char payload[];
} queued_t;

struct cw_control {
  const cw_env_t *env;
  cw_ctl_port_t port;
  owner_t *owners[OWNER_BUCKETS]; /* alert id -> owning worker (main loop only) */
  size_t nowners;
  int partial; /* the map was reset (OWNER_MAX): an id not in it may still be held */
  struct {
    int64_t id;
    char ref[16];
  } closed[CLOSED_KEEP]; /* ring of the last closed alerts */
  size_t nclosed;
  void (*on_mqtt)(void *ctx, int64_t id, cw_event_t event); /* cw_control_on_mqtt */
  void *on_mqtt_ctx;
  uv_async_t async;
  int async_open;
  pthread_mutex_t mu; /* the submit queue */
  queued_t *head, *tail;
};

/* ---------------------------------------------------------------- parse */

/* cJSON stops after the first value; anything but white space after it is junk */
/* A name from a command is free text: control characters (a newline that
 * would forge a log line, terminal escapes) become \xNN before it reaches
 * the log, MQTT or the database; cut whole at cap. */
static void escape_controls(char *out, size_t cap, const char *in) {
  size_t n = 0;
  for (; *in; in++) {
    unsigned char ch = (unsigned char)*in;
    if (ch < 0x20 || ch == 0x7f) {
      if (n + 4 >= cap) break;
      n += (size_t)snprintf(out + n, cap - n, "\\x%02x", ch);
    } else {
      if (n + 1 >= cap) break;
      out[n++] = (char)ch;
    }
  }
  out[n] = 0;
}

static int trailing_space(const char *p, const char *end) {
  for (; p && p < end; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return 0;
  return 1;
}

static const cJSON *optional_string(const cJSON *j, const char *key, int *bad) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (!v || cJSON_IsNull(v)) return NULL;
  if (!cJSON_IsString(v)) *bad = 1;
  return cJSON_IsString(v) ? v : NULL;
}

cw_reject_t cw_command_parse(const char *payload, size_t len, cw_command_t *out, const char **why) {
  cJSON *j = NULL;
  const char *end = NULL;
  cw_reject_t rc = CW_REJ_WRONG_TYPE;
  memset(out, 0, sizeof *out);
  if (len == 0 || cw_json_strict_check(payload, len) != 0 ||
      !(j = cJSON_ParseWithLengthOpts(payload, len, &end, 0)) || !trailing_space(end, payload + len)) {
    *why = "command is not JSON";
    rc = CW_REJ_INVALID_JSON;
    goto out;
  }
  int bad = 0;
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
  const cJSON *ref = optional_string(j, "ref", &bad);
  /* an alert named by its short reference, as "ref" or as a string "id" */
  if (cJSON_IsString(id) || (!id && ref)) {
    const char *s = cJSON_IsString(id) ? id->valuestring : ref->valuestring;
    char *e = NULL;
    double d = strtod(s, &e);
    int mmdd;
    uint32_t seq;
    if (s[0] >= '0' && s[0] <= '9' && e && !*e && strspn(s, "0123456789") == strlen(s)) {
      out->id = (int64_t)d; /* digits: an id */
      if (!(d >= 1 && d < 9.0e15)) bad = 1;
    } else if (cw_alert_ref_parse(s, &mmdd, &seq) == 0) {
      snprintf(out->ref, sizeof out->ref, "A-%04d-%04u", mmdd, (unsigned)seq);
    } else {
      bad = 1;
    }
    id = NULL;
  } else if (ref && cJSON_IsNumber(id)) {
    ref = NULL; /* a NOTIFY names both: the id decides */
  }
  const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "action");
  const cJSON *by = optional_string(j, "by", &bad);
  const cJSON *st = optional_string(j, "station", &bad);
  const cJSON *note = optional_string(j, "note", &bad);
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "ts"); /* event time (NOTIFY), optional */
  if (ts && !cJSON_IsNull(ts) &&
      !(cJSON_IsNumber(ts) && ts->valuedouble >= 1 && ts->valuedouble < 9.0e15 &&
        ts->valuedouble == floor(ts->valuedouble)))
    bad = 1;
  if (!cJSON_IsObject(j) || !cJSON_IsString(act) || bad ||
      (id ? !cJSON_IsNumber(id) || !(id->valuedouble >= 1 && id->valuedouble < 9.0e15) ||
                id->valuedouble != floor(id->valuedouble)
          : !out->id && !out->ref[0])) {
    *why = "expected {\"id\":N or \"ref\":\"A-MMDD-NNNN\",\"action\":\"ack|rectify|close\",\"by\":\"..\",\"note\":\"..\"}";
    goto out;
  }
  if (!strcmp(act->valuestring, "ack")) out->action = CW_EV_ACKNOWLEDGED;
  else if (!strcmp(act->valuestring, "close")) out->action = CW_EV_CLOSED;
  else if (!strcmp(act->valuestring, "rectify")) out->action = CW_EV_RECTIFIED;
  else {
    *why = "action must be ack, rectify or close";
    goto out;
  }
  if (st && !cw_station_valid(st->valuestring, strlen(st->valuestring))) {
    *why = "station is not a valid station code";
    goto out;
  }
  if (id) out->id = (int64_t)id->valuedouble;
  escape_controls(out->by, sizeof out->by, by ? by->valuestring : "operator");
  if (st) snprintf(out->station, sizeof out->station, "%s", st->valuestring);
  if (note) snprintf(out->note, sizeof out->note, "%s", note->valuestring);
  if (ts && cJSON_IsNumber(ts)) out->ts_ms = (int64_t)ts->valuedouble;
  rc = CW_REJ_OK;
out:
  cJSON_Delete(j);
  return rc;
}

/* ---------------------------------------------------------------- owners */


static size_t bucket(int64_t id) {
  return (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> 54) % OWNER_BUCKETS; /* Fibonacci */
}

static void owners_clear(cw_control_t *c) {
  for (size_t i = 0; i < OWNER_BUCKETS; i++)
    while (c->owners[i]) {
      owner_t *n = c->owners[i]->next;
      free(c->owners[i]);
      c->owners[i] = n;
    }
  c->nowners = 0;
}

static void owner_set(cw_control_t *c, int64_t id, int worker, const char *ref) {
  size_t h = bucket(id);
  for (owner_t *o = c->owners[h]; o; o = o->next)
    if (o->id == id) {
      if (ref[0]) snprintf(o->ref, sizeof o->ref, "%.15s", ref);
      return (void)(o->worker = worker);
    }
  if (c->nowners >= OWNER_MAX) { /* forgotten ids go to every worker */
    owners_clear(c);
    c->partial = 1;
  }
  owner_t *o = malloc(sizeof *o);
  if (!o) return; /* only an optimisation */
  o->id = id;
  o->worker = worker;
  snprintf(o->ref, sizeof o->ref, "%.15s", ref);
  o->next = c->owners[h];
  c->owners[h] = o;
  c->nowners++;
}

static int owner_get(cw_control_t *c, int64_t id, int del) {
  for (owner_t **p = &c->owners[bucket(id)]; *p; p = &(*p)->next) {
    if ((*p)->id != id) continue;
    int w = (*p)->worker;
    if (del) {
      owner_t *o = *p;
      *p = o->next;
      free(o);
      c->nowners--;
    }
    return w;
  }
  return -1;
}

void cw_control_note(cw_control_t *c, const cw_alert_event_t *ev) {
  if (ev->event == CW_EV_CLOSED) {
    owner_get(c, ev->id, 1);
    size_t k = c->nclosed++ % CLOSED_KEEP;
    c->closed[k].id = ev->id;
    snprintf(c->closed[k].ref, sizeof c->closed[k].ref, "%.*s", (int)sizeof c->closed[k].ref - 1,
             ev->ref);
  } else
    owner_set(c, ev->id, c->port.route(c->port.ctx, ev->station, strnlen(ev->station, CW_STATION_MAX)),
              ev->ref);
}

/* The alert not closed with this reference (a rare command: a scan), or 0. */
static int64_t owner_by_ref(const cw_control_t *c, const char *ref) {
  int m0, m1;
  uint32_t s0, s1;
  if (cw_alert_ref_parse(ref, &m0, &s0)) return 0;
  for (size_t i = 0; i < OWNER_BUCKETS; i++)
    for (const owner_t *o = c->owners[i]; o; o = o->next)
      if (o->ref[0] && !cw_alert_ref_parse(o->ref, &m1, &s1) && m0 == m1 && s0 == s1) return o->id;
  return 0;
}

/* A recently closed alert with this id (or, id 0, this reference): 1. */
static int was_closed(const cw_control_t *c, int64_t id, const char *ref) {
  size_t n = c->nclosed < CLOSED_KEEP ? c->nclosed : CLOSED_KEEP;
  for (size_t i = 0; i < n; i++)
    if (id ? c->closed[i].id == id : (ref[0] && !strcmp(c->closed[i].ref, ref))) return 1;
  return 0;
}

/* ---------------------------------------------------------------- route */

/* A command for an alert this daemon does not hold: said in words, never
 * posted. From the database (NOTIFY) it is information: cw_alert_action
 * has already stored the action and raises for an unknown id, so the
 * alert is held by another daemon (disjoint stations, another cluster
 * member), and so is an MQTT command in cluster mode, where every member
 * hears every command. Otherwise a warning, counted and dead-lettered
 * like any rejected command. */
static int not_held(cw_control_t *c, const cw_command_t *cmd, const char *source,
                    const char *payload, size_t len) {
  char what[48];
  int closed = was_closed(c, cmd->id, cmd->ref);
  if (cmd->id) snprintf(what, sizeof what, "alert %lld", (long long)cmd->id);
  else snprintf(what, sizeof what, "alert %s", cmd->ref);
  const char *why = closed ? "is already closed"
                    : cmd->id ? "is not held by this daemon (no such id, or closed before it started)"
                              : "is not held by this daemon (no such reference, or closed before it started)";
  const char *act = cmd->action == CW_EV_CLOSED ? "close" : cmd->action == CW_EV_RECTIFIED ? "rectify" : "ack";
  int info = !strcmp(source, CW_CONTROL_NOTIFY_SOURCE) || (c->env->cfg && c->env->cfg->shards);
  cw_log(info ? CW_LOG_INFO : CW_LOG_WARN, "control: %s of %s by %s (from %s) %s: %s", act, what,
         cmd->by, source, info ? "not applied here" : "rejected", why);
  if (!info)
    cw_env_reject(c->env, CW_REJ_WRONG_TYPE, -1, closed ? "alert already closed" : "alert not held",
                  source, strlen(source), payload, len);
  return -ENOENT;
}

int cw_control_command(cw_control_t *c, const char *payload, size_t len, const char *source) {
  cw_command_t cmd;
  const char *why = NULL;
  cw_reject_t rej = cw_command_parse(payload, len, &cmd, &why);
  if (rej != CW_REJ_OK) {
    cw_log(CW_LOG_WARN, "control: command from %s rejected (%s): %s", source, cw_reject_name(rej),
           why);
    cw_env_reject(c->env, rej, -1, why, source, strlen(source), payload, len);
    return -EINVAL;
  }
  if (!cmd.id && !(cmd.id = owner_by_ref(c, cmd.ref))) return not_held(c, &cmd, source, payload, len);
  int target = owner_get(c, cmd.id, 0);
  if (target < 0 && !c->partial) return not_held(c, &cmd, source, payload, len);
  cw_ctl_t *ctl = calloc(1, sizeof *ctl);
  if (!ctl) return -ENOMEM;
  ctl->type = CW_CTL_OPERATOR;
  ctl->alert.id = cmd.id;
  ctl->alert.event = cmd.action;
  snprintf(ctl->alert.by, sizeof ctl->alert.by, "%s", cmd.by);
  snprintf(ctl->station, sizeof ctl->station, "%s", cmd.station);
  snprintf(ctl->alert.station, sizeof ctl->alert.station, "%s", cmd.station);
  snprintf(ctl->alert.message, sizeof ctl->alert.message, "%s", cmd.note);
  ctl->ts_ms = cmd.ts_ms;
  if (target < 0) target = cmd.station[0] ? CW_CTL_BY_STATION : CW_CTL_ALL;
  /* before the post: the event it causes is stored after this */
  if (c->on_mqtt && strcmp(source, CW_CONTROL_NOTIFY_SOURCE)) {
    c->on_mqtt(c->on_mqtt_ctx, cmd.id, cmd.action);
    /* a rectify from open or cleared is registered (acknowledged) first */
    if (cmd.action == CW_EV_RECTIFIED) c->on_mqtt(c->on_mqtt_ctx, cmd.id, CW_EV_ACKNOWLEDGED);
  }
  c->port.post(c->port.ctx, target, ctl);
  cw_log(CW_LOG_INFO, "control: operator %s of alert %lld by %s (from %s)",
         cmd.action == CW_EV_CLOSED ? "close" : cmd.action == CW_EV_RECTIFIED ? "rectify" : "ack",
         (long long)cmd.id, cmd.by, source);
  return 0;
}

/* The same detach-under-the-lock idiom as a worker's control queue
 * (worker.c drain_ctl), on another element type: kept as two short loops
 * rather than a generic list of void pointers. */
static void run_queue(cw_control_t *c) {
  pthread_mutex_lock(&c->mu);
  queued_t *q = c->head;
  c->head = c->tail = NULL;
  pthread_mutex_unlock(&c->mu);
  while (q) {
    queued_t *n = q->next;
    if (!q->source) {
      cw_alert_event_t ev;
      memcpy(&ev, q->payload, sizeof ev);
      cw_control_note(c, &ev);
    } else {
      cw_control_command(c, q->payload, q->len, q->source);
    }
    free(q);
    q = n;
  }
}

static void on_async(uv_async_t *h) { run_queue(h->data); }

void cw_control_submit(cw_control_t *c, const char *payload, size_t len, const char *source) {
  if (!c->async_open) {
    if (source) cw_control_command(c, payload, len, source);
    else cw_control_note(c, (const cw_alert_event_t *)(const void *)payload);
    return;
  }
  queued_t *q = malloc(sizeof *q + len + 1);
  if (!q) {
    cw_log(CW_LOG_ERROR, "control: out of memory for an operator command from %s", source);
    return;
  }
  q->next = NULL;
  q->source = source;
  q->len = len;
  memcpy(q->payload, payload, len);
  q->payload[len] = 0;
  pthread_mutex_lock(&c->mu);
  int was_empty = c->head == NULL;
  if (c->tail) c->tail->next = q;
  else c->head = q;
  c->tail = q;
  pthread_mutex_unlock(&c->mu);
  if (was_empty) uv_async_send(&c->async);
}

void cw_control_on_mqtt(cw_control_t *c, void (*fn)(void *ctx, int64_t id, cw_event_t event),
                        void *ctx) {
  c->on_mqtt = fn;
  c->on_mqtt_ctx = ctx;
}

void cw_control_restored(cw_control_t *c, const cw_alert_event_t *ev) {
  cw_control_submit(c, (const char *)ev, sizeof *ev, NULL);
}

int cw_control_create(const cw_env_t *env, cw_ctl_port_t port, uv_loop_t *loop,
                      cw_control_t **out) {
  cw_control_t *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->env = env;
  c->port = port;
  pthread_mutex_init(&c->mu, NULL);
  if (loop) {
    int rc = uv_async_init(loop, &c->async, on_async);
    if (rc) {
      pthread_mutex_destroy(&c->mu);
      free(c);
      return rc;
    }
    c->async.data = c;
    c->async_open = 1;
  }
  *out = c;
  return 0;
}

static void free_self(uv_handle_t *h) { free(h->data); }

void cw_control_free(cw_control_t *c) {
  if (!c) return;
  owners_clear(c);
  queued_t *q = c->head;
  while (q) {
    queued_t *n = q->next;
    free(q);
    q = n;
  }
  c->head = c->tail = NULL;
  pthread_mutex_destroy(&c->mu);
  if (c->async_open) {
    /* the handle lives inside c: free it once libuv has let go of it */
    uv_close((uv_handle_t *)&c->async, free_self);
    return;
  }
  free(c);
}
