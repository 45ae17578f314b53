/* alert_sink.c - alert rings -> log, MQTT, database, owner map (alert_sink.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert_render.h"
#include "alert_sink.h"
#include "station_tz.h"
#include "clock.h"
#include "session.h"

struct cw_alert_sink {
  cw_alert_sink_cfg_t cfg; /* rings points at our own copy */
  uv_async_t async;
  int async_open;
  FILE *log;
  int log_is_stdout;
};

static void open_log(cw_alert_sink_t *s) {
  const char *path = s->cfg.env->cfg->alert_log;
  s->log_is_stdout = !strcmp(path, "-");
  if (s->log_is_stdout) {
    s->log = stdout;
    return;
  }
  if (!*path) {
    s->log = NULL;
    return;
  }
  s->log = fopen(path, "ae");
  if (!s->log) cw_log(CW_LOG_ERROR, "alerts: cannot open alert log %s: %s", path, strerror(errno));
}

static void close_log(cw_alert_sink_t *s) {
  if (s->log && !s->log_is_stdout) fclose(s->log);
  else if (s->log) fflush(s->log);
  s->log = NULL;
}

static void publish(cw_alert_sink_t *s, const cw_alert_event_t *ev, const char *json, int jn) {
  const cw_config_t *c = s->cfg.env->cfg;
  char topic[512];
  void *ctx = s->cfg.publish_ctx;
  /* retained, so a late subscriber sees every open alert */
  if (jn < 0 || cw_alert_topic(c->alert_topic_prefix, ev, topic, sizeof topic) < 0) return;
  s->cfg.publish(ctx, topic, json, (size_t)jn, c->alert_retain);
  if (ev->event == CW_EV_CLOSED && c->alert_retain)
    s->cfg.publish(ctx, topic, "", 0, 1); /* clears the retained copy */
  if (c->alert_actuate && ev->severity == CW_SEV_CRITICAL && ev->socket &&
      (ev->event == CW_EV_RAISED || ev->event == CW_EV_ESCALATED)) {
    char cmd[160];
    int cn = snprintf(cmd, sizeof cmd,
                      "{\"cmd\":\"cut_power\",\"alert_id\":%lld,\"station\":\"%s\",\"socket\":%u}",
                      (long long)ev->id, ev->station, (unsigned)ev->socket);
    snprintf(topic, sizeof topic, "cw/%s/%u/cmd", ev->station, (unsigned)ev->socket);
    if (cn > 0 && (size_t)cn < sizeof cmd) s->cfg.publish(ctx, topic, cmd, (size_t)cn, 0);
  }
}

static void sink_event(cw_alert_sink_t *s, const cw_alert_event_t *ev) {
  const cw_config_t *c = s->cfg.env->cfg;
  char json[1024], line[1200];
  if (ev->kind == CW_SESSION_KIND) { /* a charging session (lib/session.h): only stored */
    if (s->cfg.store) s->cfg.store(s->cfg.store_ctx, ev);
    return;
  }
  int jn = cw_alert_json(ev, json, sizeof json);

  if ((unsigned)ev->kind < CW_KIND__COUNT && (unsigned)ev->severity < 3)
    atomic_fetch_add(&s->cfg.env->m->alert_events[ev->kind][ev->severity], 1);
  if ((unsigned)ev->kind < CW_KIND__COUNT && (unsigned)ev->severity < 3 && (unsigned)ev->event <= CW_EV_RECTIFIED)
    atomic_fetch_add(&s->cfg.env->m->alert_events_by[ev->kind][ev->severity][ev->event], 1);
  if (s->cfg.note) s->cfg.note(s->cfg.note_ctx, ev);
  /* reading ts -> alert out, for alerts a reading raised (offline and
   * ingest run on receive time: no reading behind them) */
  if ((ev->event == CW_EV_RAISED || ev->event == CW_EV_ESCALATED || ev->event == CW_EV_REPEATED) &&
      ev->kind != CW_KIND_OFFLINE && ev->kind != CW_KIND_INGEST)
    cw_hist_observe(&s->cfg.env->m->publish_to_alert, cw_now_ms() - ev->ts_ms);
  if (s->log) { /* (a) */
    int json_log = c->alert_log_format == CW_LOG_JSON;
    int ln = json_log ? jn : cw_alert_text(ev, cw_station_tz_offset_min(ev->station, c->alert_default_tz, ev->ts_ms), line,
                                       sizeof line);
    if (ln >= 0) {
      fwrite(json_log ? json : line, 1, (size_t)ln, s->log);
      fputc('\n', s->log);
    }
  }
  if (s->cfg.publish) publish(s, ev, json, jn);       /* (b) */
  if (s->cfg.store) s->cfg.store(s->cfg.store_ctx, ev); /* (c) */
}

static int visit(void *ctx, const void *rec, size_t len) {
  cw_alert_event_t ev;
  if (len != sizeof ev) return 0; /* cannot happen: workers push whole events */
  memcpy(&ev, rec, sizeof ev);    /* records are not aligned for the struct */
  sink_event(ctx, &ev);
  return 0;
}

size_t cw_alert_sink_drain(cw_alert_sink_t *s) {
  size_t got, total = 0;
  /* Until every ring is empty: a producer only wakes us on empty->non-empty,
   * so leaving records behind would leave them until the next alert. */
  do {
    got = 0;
    for (int i = 0; i < s->cfg.nrings; i++) got += cw_ring_pop_burst(s->cfg.rings[i], 64, visit, s);
    total += got;
  } while (got);
  if (total && s->log) fflush(s->log);
  return total;
}

static void on_async(uv_async_t *h) { cw_alert_sink_drain(h->data); }

int cw_alert_sink_create(const cw_alert_sink_cfg_t *cfg, cw_alert_sink_t **out) {
  cw_alert_sink_t *s = calloc(1, sizeof *s);
  int rc;
  if (!s) return -ENOMEM;
  s->cfg = *cfg;
  s->cfg.rings = calloc(cfg->nrings > 0 ? (size_t)cfg->nrings : 1, sizeof *s->cfg.rings);
  if (!s->cfg.rings) {
    free(s);
    return -ENOMEM;
  }
  for (int i = 0; i < cfg->nrings; i++) s->cfg.rings[i] = cfg->rings[i];
  if (cfg->loop) {
    if ((rc = uv_async_init(cfg->loop, &s->async, on_async))) {
      free(s->cfg.rings);
      free(s);
      return rc;
    }
    s->async.data = s;
    s->async_open = 1;
  }
  open_log(s);
  if (!s->log && cfg->env->cfg->alert_log[0]) { /* a sink that cannot open is a start-up error */
    rc = errno ? -errno : -EIO;
    cw_alert_sink_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void cw_alert_sink_wake(cw_alert_sink_t *s) {
  if (s && s->async_open) uv_async_send(&s->async);
}

void cw_alert_sink_emit(cw_alert_sink_t *s, const cw_alert_event_t *ev) {
  cw_alert_sink_drain(s); /* what the workers raised first stays first */
  sink_event(s, ev);
  if (s->log) fflush(s->log);
}

void cw_alert_sink_reopen(cw_alert_sink_t *s) {
  close_log(s);
  open_log(s);
}

static void free_self(uv_handle_t *h) { free(h->data); }

void cw_alert_sink_free(cw_alert_sink_t *s) {
  if (!s) return;
  close_log(s);
  free(s->cfg.rings);
  if (s->async_open) {
    /* the handle lives inside s: free it once libuv has let go of it */
    uv_close((uv_handle_t *)&s->async, free_self);
    return;
  }
  free(s);
}
