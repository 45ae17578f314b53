/* main.c - chargewatchd: the command line, and the wiring of the parts.
 * Every part of daemon/ knows only lib/, the base headers (config, log,
 * metrics, env, ctl) and its own children; main.c creates the parts in
 * dependency order and connects them with callbacks and ring ends
 * (docs/ARCHITECTURE.md draws the graph). Then the libuv main loop runs
 * (signals, systemd notify/watchdog, alert sink, operator commands, HTTP)
 * until SIGTERM/SIGINT stops it; the graceful shutdown runs after the loop
 * has returned: stop consuming, drain the rings, flush or spool, exit 0
 * within shutdown_timeout_s (docs/RELIABILITY.md). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "alert_render.h"
#include "alert_sink.h"
#include "clock.h"
#include "control.h"
#include "db.h"
#include "deadletter.h"
#include "env.h"
#include "hash.h"
#include "http.h"
#include "lease.h"
#include "idgen.h"
#include "instance.h"
#include "json_arena.h"
#include "journal.h"
#include "mqtt_in.h"
#include "mqtt_out.h"
#include "partition.h"
#include "pipeline.h"
#include "preflight.h"
#include "shards.h"
#include "sight.h"
#include "writer.h"

#define DEFAULT_CONFIG "/etc/chargewatch/chargewatch.conf"
#define NOTIFY_SOURCE CW_CONTROL_NOTIFY_SOURCE /* the NOTIFY channel, named in dead-letter lines */

typedef struct app {
  cw_config_t cfg;
  char config_path[256];
  cw_metrics_t m;
  _Atomic int stopping; /* set once the shutdown begins */
  cw_env_t env;
  cw_idgen_t ids;
  uv_loop_t *loop;
  int64_t started_ms;
  /* the parts, in creation order */
  cw_deadletter_t *deadletter;
  cw_shards_t *shards;     /* per ingest client: its journal; [cluster] its watch */
  cw_pipeline_t *pipes[CW_MAX_SHARDS]; /* one; with [cluster] one per shard */
  int npipes;
  cw_control_t *control;
  cw_alert_sink_t *sink;
  cw_mqtt_in_t *mqtt_in;   /* feeds the pipeline; with [cluster] commands only */
  cw_mqtt_in_t *shard_in[CW_MAX_SHARDS]; /* [cluster]: shard k's client feeds pipes[k] */
  cw_lease_t *lease;       /* [cluster]: which shards this process owns */
  cw_mqtt_out_t *mqtt_out; /* publishes alerts */
  cw_writer_t *writer;     /* main: [postgres] conninfo (alerts, policies, readings) */
  /* [cluster] shard_conninfo.K: one readings writer per other database */
  cw_writer_t *dbw[CW_MAX_SHARDS];
  char dbw_spool[CW_MAX_SHARDS][16]; /* spool subdirectory: db-<FNV-1a of the conninfo> */
  int ndbw;
  int shard_writer[CW_MAX_SHARDS]; /* index into dbw, -1: the main writer */
  cw_http_t *http;
  /* main loop */
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t watchdog;
  int signals_on, watchdog_on;
  cw_sight_t *sight; /* blindness (lib/blind.h): a tick on the main loop */
  int stop_signal;
  /* shutdown deadline, enforced by a thread because the stop sequence
   * blocks (joins, flushes) */
  pthread_t deadline;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int deadline_started;
  int finished;
} app_t;

static void usage(FILE *f) {
  fprintf(f,
          "usage: chargewatchd [-c FILE] [-f] [--check-config] [--version] [--help]\n"
          "  -c, --config FILE  configuration file (default %s;\n"
          "                     built-in defaults when that file does not exist)\n"
          "  -f, --foreground   stay in the foreground (always: run it under systemd Type=notify)\n"
          "  --check-config     load and validate the configuration, print \"config OK\" or the error\n"
          "  --version          print the version\n"
          "  --help             this text\n",
          DEFAULT_CONFIG);
}

/* ------------------------------------------------------------- wiring */

static void on_reject(void *ctx, cw_reject_t why, int index, const char *detail, const char *topic,
                      size_t topic_len, const void *payload, size_t len) {
  cw_deadletter_write(ctx, why, index, detail, topic, topic_len, payload, len);
}

static void wake_sink(void *ctx) { cw_alert_sink_wake(((app_t *)ctx)->sink); }

static int deliver(void *ctx, const cw_msg_t *msg) { return cw_pipeline_deliver(ctx, msg); }
/* ---- ingest client k's parts, for shards.c (cw_shard_port_t): its MQTT
 * client ([cluster] shard_in[k], else the one ingest client), its pipeline
 * and the writer of its readings */
static cw_mqtt_in_t *client_of(const app_t *a, int k) { return a->cfg.shards ? a->shard_in[k] : a->mqtt_in; }
static cw_writer_t *writer_of(const app_t *a, int k) {
  return a->cfg.shards && a->shard_writer[k] >= 0 ? a->dbw[a->shard_writer[k]] : a->writer;
}
static void in_connect(void *ctx, int k) { cw_mqtt_in_connect(client_of(ctx, k)); }
static void in_drop(void *ctx, int k) { cw_mqtt_in_drop(client_of(ctx, k)); }
static int in_up(void *ctx, int k) { return cw_mqtt_in_up(client_of(ctx, k)); }
static int64_t in_stalled_ms(void *ctx, int k, int64_t now_ms) {
  return cw_mqtt_in_stalled_ms(client_of(ctx, k), now_ms);
}
static void in_journal(void *ctx, int k, cw_journal_t *j) { cw_mqtt_in_journal(client_of(ctx, k), j); }
static void pipe_set_blind(void *ctx, int k, int64_t until_ms) {
  cw_pipeline_set_blind(((app_t *)ctx)->pipes[k], until_ms);
}
static void pipe_post_all(void *ctx, int k, cw_ctl_t *c) {
  cw_pipeline_post(((app_t *)ctx)->pipes[k], CW_CTL_ALL, c);
}
static int pipe_rings_empty(void *ctx, int k) {
  app_t *a = ctx;
  for (int i = 0; i < a->cfg.workers; i++) {
    cw_pipeline_gauges_t g;
    cw_pipeline_gauges(a->pipes[k], i, &g);
    if (g.ingest_used || g.readings_used || g.alerts_used) return 0;
  }
  return 1;
}
static int64_t pipe_jpos_handed(void *ctx, int k) { return cw_pipeline_jpos_handed(((app_t *)ctx)->pipes[k]); }
static void pipe_replay(void *ctx, int k, const cw_journal_entry_t *e) {
  cw_pipeline_ingest(((app_t *)ctx)->pipes[k], e->topic, e->topic_len, e->payload, e->payload_len,
                     e->recv_ms, e->jpos);
}
static int64_t pipe_processed(void *ctx) { return cw_pipeline_jpos_processed(ctx); }
static void writer_commit_journal(void *ctx, int k, cw_journal_t *j) {
  app_t *a = ctx;
  cw_writer_journal(writer_of(a, k), k, j, pipe_processed, a->pipes[k]);
}
/* shard k's readings stored by its writer, then the alerts it raised by
 * the main writer */
static int writer_sync(void *ctx, int k, int timeout_ms) {
  app_t *a = ctx;
  cw_writer_t *w = writer_of(a, k);
  int rc = cw_writer_sync(w, timeout_ms);
  if (!rc && w != a->writer) rc = cw_writer_sync(a->writer, 2000);
  return rc;
}
static void drain_alerts(void *ctx) { cw_alert_sink_drain(((app_t *)ctx)->sink); }

/* ---- what sight.c reads and drives on its tick (cw_sight_port_t): the
 * ingest client (with [cluster] the command client), the shards' own
 * blindness, the alert sink, the publisher */
static int64_t sight_stalled_ms(void *ctx, int64_t now_ms) {
  return cw_mqtt_in_stalled_ms(((app_t *)ctx)->mqtt_in, now_ms);
}
static int sight_up(void *ctx) { return cw_mqtt_in_up(((app_t *)ctx)->mqtt_in); }
static void sight_shards_init(void *ctx, int64_t now_ms, int64_t stall_ms) {
  cw_shards_blind_init(((app_t *)ctx)->shards, now_ms, stall_ms);
}
static void sight_shards_tick(void *ctx, int64_t now_ms, cw_blind_obs_t *o) {
  cw_shards_tick(((app_t *)ctx)->shards, now_ms, o);
}
static void sight_emit(void *ctx, const cw_alert_event_t *ev) { cw_alert_sink_emit(((app_t *)ctx)->sink, ev); }
static void publisher_tick(void *ctx, int64_t now_ms) { cw_mqtt_out_tick(((app_t *)ctx)->mqtt_out, now_ms); }

static void mqtt_command(void *ctx, const char *payload, size_t len) {
  app_t *a = ctx;
  cw_control_submit(a->control, payload, len, a->cfg.mqtt_cmd_topic);
}

static void notify_command(void *ctx, const char *payload, size_t len) {
  cw_control_submit(((app_t *)ctx)->control, payload, len, NOTIFY_SOURCE);
}

static int publish(void *ctx, const char *topic, const void *payload, size_t len, int retain) {
  app_t *a = ctx;
  return a->mqtt_out ? cw_mqtt_out_publish(a->mqtt_out, topic, payload, len, retain) : 0;
}

static int store_alert(void *ctx, const cw_alert_event_t *ev) {
  app_t *a = ctx;
  return a->writer ? cw_writer_store_alert(a->writer, ev) : 0;
}

static void note_alert(void *ctx, const cw_alert_event_t *ev) { cw_control_note(ctx, ev); }

static int db_refusal(void *ctx, char *why, size_t cap) {
  app_t *a = ctx;
  return a->writer ? cw_writer_db_refusal(a->writer, why, cap) : 0;
}

static void mqtt_command_origin(void *ctx, int64_t id, cw_event_t event) {
  app_t *a = ctx;
  if (a->writer) cw_writer_note_mqtt_command(a->writer, id, event);
}

static int ring_gauges(void *ctx, int i, cw_http_rings_t *out) {
  app_t *a = ctx;
  cw_pipeline_gauges_t g;
  if (i >= a->npipes * a->cfg.workers) return -1;
  cw_pipeline_gauges(a->pipes[i / a->cfg.workers], i % a->cfg.workers, &g);
  *out = (cw_http_rings_t){g.ingest_used, g.readings_used, g.alerts_used,
                           g.ingest_cap,  g.readings_cap,  g.alerts_cap};
  return 0;
}

/* ---- every pipeline behind one control port: a station goes to the
 * pipeline of its shard ([cluster]) or to the only one; worker numbers run
 * across the pipelines (pipeline i, worker w: i * workers + w). */
static int station_pipe(const app_t *a, const char *st, size_t len) {
  const cw_config_t *c = &a->cfg;
  if (!c->shards) return 0;
  return cw_partition_shard(cw_partition(c->partition_hash, st, len, c->partitions), c->shards);
}

static void all_post(void *ctx, int worker, cw_ctl_t *c) {
  app_t *a = ctx;
  int w = a->cfg.workers;
  /* a restored alert is commandable: the control's owner map learns it */
  if (c->type == CW_CTL_RESTORE_ALERT && a->control) cw_control_restored(a->control, &c->alert);
  if (worker == CW_CTL_ALL) {
    for (int i = 0; i < a->npipes; i++) {
      cw_ctl_t *copy = i + 1 < a->npipes ? malloc(sizeof *copy) : c;
      if (!copy) continue;
      if (copy != c) *copy = *c;
      cw_pipeline_post(a->pipes[i], CW_CTL_ALL, copy);
    }
  } else if (worker == CW_CTL_BY_STATION) {
    cw_pipeline_post(a->pipes[station_pipe(a, c->station, strlen(c->station))], worker, c);
  } else if (worker >= 0 && worker < a->npipes * w) {
    cw_pipeline_post(a->pipes[worker / w], worker % w, c);
  } else {
    free(c);
  }
}

static int all_route(void *ctx, const char *st, size_t len) {
  app_t *a = ctx;
  int i = station_pipe(a, st, len);
  return i * a->cfg.workers + cw_pipeline_route(a->pipes[i], st, len);
}

/* [cluster] shard k's MQTT ingest client, feeding pipeline k. */
static int create_shard_clients(app_t *a) {
  int rc = 0;
  for (int k = 0; k < a->cfg.shards && !rc; k++) {
    cw_mqtt_in_cfg_t mc = {.env = &a->env,
                           .deliver = deliver,
                           .deliver_ctx = a->pipes[k],
                           .shard = k,
                           .connected = cw_shards_connected,
                           .connected_ctx = a->shards};
    rc = cw_mqtt_in_create(&mc, &a->shard_in[k]);
    cw_pipeline_set_blind(a->pipes[k], INT64_MAX); /* not ours until leased */
  }
  return rc;
}

/* Which writer stores each shard's readings: -1 the main writer (no
 * shard_conninfo, or the same as [postgres] conninfo), else one readings
 * writer per distinct shard_conninfo text. */
static void assign_writers(app_t *a) {
  const cw_config_t *c = &a->cfg;
  for (int k = 0; k < a->npipes; k++) {
    const char *ci = c->shard_conninfo[k];
    a->shard_writer[k] = -1;
    if (!c->shards || !ci[0] || !strcmp(ci, c->pg_conninfo)) continue;
    for (int j = 0; j < k && a->shard_writer[k] < 0; j++)
      if (a->shard_writer[j] >= 0 && !strcmp(c->shard_conninfo[j], ci)) a->shard_writer[k] = a->shard_writer[j];
    if (a->shard_writer[k] >= 0) continue;
    a->shard_writer[k] = a->ndbw;
    snprintf(a->dbw_spool[a->ndbw++], sizeof a->dbw_spool[0], "db-%08x", cw_fnv1a32(ci, strlen(ci)));
  }
}

/* The main writer first (migrations, policies, restore), then the readings
 * writers, each with the reading rings of its shards. rings has room for
 * every ring. 0 or -errno (logged). */
static int create_writers(app_t *a, cw_ctl_port_t port, cw_ring_t **rings) {
  const cw_config_t *c = &a->cfg;
  int rc;
  assign_writers(a);
  for (int g = -1; g < a->ndbw; g++) {
    int n = 0, first = -1;
    for (int k = 0; k < a->npipes; k++) {
      if (a->shard_writer[k] != g) continue;
      if (first < 0) first = k;
      for (int i = 0; i < c->workers; i++) rings[n++] = cw_pipeline_readings(a->pipes[k], i);
    }
    cw_writer_cfg_t wc = {.env = &a->env,
                          .readings = rings,
                          .nrings = n,
                          .port = port,
                          .ids = &a->ids,
                          .command = g < 0 ? notify_command : NULL,
                          .command_ctx = a,
                          .conninfo = g < 0 ? NULL : c->shard_conninfo[first],
                          .spool_sub = g < 0 ? NULL : a->dbw_spool[g]};
    if ((rc = cw_writer_create(&wc, g < 0 ? &a->writer : &a->dbw[g]))) {
      cw_log(CW_LOG_ERROR, "writer %s: %s", g < 0 ? "(main)" : a->dbw_spool[g], strerror(-rc));
      return rc;
    }
    if (g >= 0)
      cw_log(CW_LOG_INFO, "cluster: writer %s: the readings of %d shard%s (first %d) go to their own "
             "database", a->dbw_spool[g], n / c->workers, n / c->workers == 1 ? "" : "s", first);
  }
  return 0;
}

/* Create every part, wired, in dependency order. 0 or -errno (logged). */
static int create_parts(app_t *a, const cw_decode_cfg_t *dc) {
  const cw_config_t *c = &a->cfg;
  int rc, n = c->workers;
  if ((rc = cw_deadletter_open(&a->deadletter, c->deadletter, c->deadletter_max_bytes,
                               &a->m.deadletter_written))) {
    cw_log(CW_LOG_ERROR, "dead-letter file %s: %s", c->deadletter, strerror(-rc));
    return rc;
  }
  a->env.reject = on_reject;
  a->env.reject_ctx = a->deadletter;

  cw_pipeline_cfg_t pc = {.env = &a->env,
                          .nworkers = n,
                          .ring_bytes = cw_ring_capacity_for_slots(c->ring_slots),
                          .dcfg = dc,
                          .ids = &a->ids,
                          .alert_wake = wake_sink,
                          .alert_wake_ctx = a};
  cw_ctl_port_t port = {a, all_post, all_route};
  cw_shard_port_t sp = {.ctx = a,
                        .connect = in_connect,
                        .drop = in_drop,
                        .up = in_up,
                        .stalled_ms = in_stalled_ms,
                        .journal = in_journal,
                        .set_blind = pipe_set_blind,
                        .post_all = pipe_post_all,
                        .rings_empty = pipe_rings_empty,
                        .jpos_handed = pipe_jpos_handed,
                        .ingest = pipe_replay,
                        .commit_journal = writer_commit_journal,
                        .sync = writer_sync,
                        .drain_alerts = drain_alerts};
  if ((rc = cw_shards_create(&a->env, &sp, &a->shards))) return rc;
  for (a->npipes = 0; a->npipes < (c->shards ? c->shards : 1); a->npipes++) {
    if (c->shards) { /* a shard's own lag, for its blindness */
      pc.lag_latest_ms = cw_shards_lag_latest(a->shards, a->npipes);
      pc.lag_fresh_ms = cw_shards_lag_fresh(a->shards, a->npipes);
    }
    if ((rc = cw_pipeline_create(&pc, &a->pipes[a->npipes]))) {
      cw_log(CW_LOG_ERROR, "workers: %s", strerror(-rc));
      return rc;
    }
  }
  n = a->npipes * c->workers; /* rings of every pipeline */
  if ((rc = cw_control_create(&a->env, port, a->loop, &a->control))) {
    cw_log(CW_LOG_ERROR, "control: %s", uv_strerror(rc));
    return rc;
  }
  cw_control_on_mqtt(a->control, mqtt_command_origin, a);

  cw_ring_t **rings = calloc((size_t)n, sizeof *rings);
  if (!rings) return -ENOMEM;
  for (int i = 0; i < n; i++) rings[i] = cw_pipeline_alerts(a->pipes[i / c->workers], i % c->workers);
  cw_alert_sink_cfg_t sc = {.env = &a->env,
                            .loop = a->loop,
                            .rings = rings,
                            .nrings = n,
                            .publish = publish,
                            .publish_ctx = a,
                            .store = store_alert,
                            .store_ctx = a,
                            .note = note_alert,
                            .note_ctx = a->control};
  rc = cw_alert_sink_create(&sc, &a->sink);
  if (rc) {
    cw_log(CW_LOG_ERROR, "alert sinks: %s", strerror(rc < 0 ? -rc : rc));
    goto out;
  }

  cw_mqtt_in_cfg_t mc = {.env = &a->env,
                         .loop = a->loop,
                         .deliver = deliver,
                         .deliver_ctx = a->pipes[0],
                         .command = mqtt_command,
                         .command_ctx = a,
                         .shard = -1};
  if ((rc = cw_mqtt_in_create(&mc, &a->mqtt_in)) || (rc = create_shard_clients(a)) ||
      (rc = cw_mqtt_out_create(&a->env, a->loop, &a->mqtt_out)))
    goto out;

  rc = create_writers(a, port, rings);
out:
  free(rings);
  return rc;
}

/* ------------------------------------------------------------- retained state */

typedef struct want_list {
  cw_retained_t *v;
  size_t n, cap;
  const cw_config_t *cfg;
} want_list_t;

static void want_add(void *ctx, const cw_alert_event_t *ev) {
  want_list_t *w = ctx;
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    cw_retained_t *v = realloc(w->v, cap * sizeof *v);
    if (!v) return;
    w->v = v;
    w->cap = cap;
  }
  cw_retained_t *r = &w->v[w->n];
  int jn = cw_alert_json(ev, r->payload, sizeof r->payload);
  if (jn < 0 || cw_alert_topic(w->cfg->alert_topic_prefix, ev, r->topic, sizeof r->topic) < 0) return;
  r->len = (size_t)jn;
  w->n++;
}

/* The database is the truth: every alert not closed, as its retained message
 * should read; the publisher fixes the broker once connected. */
static void reconcile_retained(app_t *a) {
  want_list_t w = {.cfg = &a->cfg};
  if (cw_db_alert_states(a->cfg.pg_conninfo, want_add, &w) == 0)
    cw_mqtt_out_reconcile(a->mqtt_out, w.v, w.n);
  free(w.v);
}

/* ------------------------------------------------------------- shutdown */

static void *deadline_main(void *arg) {
  app_t *a = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += a->cfg.shutdown_timeout_s;
  pthread_mutex_lock(&a->mu);
  while (!a->finished) {
    if (pthread_cond_timedwait(&a->cv, &a->mu, &until) == ETIMEDOUT && !a->finished) {
      cw_log(CW_LOG_ERROR, "shutdown took longer than shutdown_timeout_s=%d: exiting now",
             a->cfg.shutdown_timeout_s);
      _exit(1);
    }
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

/* Stop in dependency order, after the loop has returned (or after a failed
 * start-up). The main thread is the alert rings' consumer, so it drains them
 * while it waits for the workers: a worker may be waiting on a full one. */
static void stop_parts(app_t *a) {
  if (atomic_exchange(&a->stopping, 1)) return;
  int64_t t0 = cw_mono_ms();
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  cw_log(CW_LOG_INFO, "shutting down: stop consuming, drain, flush (limit %d s)",
         a->cfg.shutdown_timeout_s);
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  if (pthread_create(&a->deadline, NULL, deadline_main, a) == 0) a->deadline_started = 1;

  cw_lease_quiesce(a->lease);                  /* 1. no new messages; sessions kept */
  cw_mqtt_in_pause(a->mqtt_in);
  for (int k = 0; k < a->cfg.shards; k++) cw_mqtt_in_pause(a->shard_in[k]);
  for (int i = 0; i < a->npipes; i++) cw_pipeline_request_stop(a->pipes[i]);
  for (int i = 0; i < a->npipes; i++) {        /* 2. every ingest ring drained */
    while (!cw_pipeline_stopped(a->pipes[i])) {
      if (a->sink) cw_alert_sink_drain(a->sink);
      cw_sleep_ms(2);
    }
    cw_pipeline_join(a->pipes[i]);
  }
  if (a->sink) cw_alert_sink_drain(a->sink);   /* 3. last alerts: log, MQTT, writer */
  if (a->writer) cw_writer_stop(a->writer);    /* 4. readings + alerts flushed or spooled */
  for (int g = 0; g < a->ndbw; g++) cw_writer_stop(a->dbw[g]);
  cw_lease_free(a->lease);                     /*    then the shards are free for others */
  a->lease = NULL;
  cw_mqtt_out_stop(a->mqtt_out);               /* 5. queued alert publishes out */
  cw_log(CW_LOG_INFO, "stopped in %lld ms: %llu readings accepted, %llu rows committed, "
         "%llu batches spooled",
         (long long)(cw_mono_ms() - t0), (unsigned long long)atomic_load(&a->m.readings_accepted),
         (unsigned long long)atomic_load(&a->m.rows_committed),
         (unsigned long long)atomic_load(&a->m.batches_spooled));
}

static void close_cb_noop(uv_handle_t *h) { (void)h; }

/* Free every part; the loop runs once more for the handles' close callbacks. */
static void free_parts(app_t *a) {
  cw_mqtt_in_free(a->mqtt_in);
  for (int k = 0; k < a->cfg.shards; k++) cw_mqtt_in_free(a->shard_in[k]);
  cw_mqtt_out_free(a->mqtt_out);
  cw_alert_sink_free(a->sink);
  cw_control_free(a->control);
  cw_http_stop(a->http);
  if (a->signals_on) {
    uv_close((uv_handle_t *)&a->sigterm, close_cb_noop);
    uv_close((uv_handle_t *)&a->sigint, close_cb_noop);
    uv_close((uv_handle_t *)&a->sighup, close_cb_noop);
  }
  if (a->watchdog_on) uv_close((uv_handle_t *)&a->watchdog, close_cb_noop);
  cw_sight_free(a->sight);
  if (a->loop) {
    uv_run(a->loop, UV_RUN_NOWAIT); /* run the close callbacks */
    uv_loop_close(a->loop);
  }
  cw_writer_free(a->writer);
  for (int g = 0; g < a->ndbw; g++) cw_writer_free(a->dbw[g]);
  cw_shards_free(a->shards); /* the journals, once the writers are done with them */
  for (int i = 0; i < a->npipes; i++) cw_pipeline_free(a->pipes[i]);
  cw_deadletter_close(a->deadletter);
  if (a->deadline_started) {
    pthread_mutex_lock(&a->mu);
    a->finished = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->deadline, NULL);
  }
}

/* ------------------------------------------------------------- main loop */

static void reload(app_t *a) {
  cw_config_t *nc = malloc(sizeof *nc);
  char err[512];
  if (!nc) return;
  cw_log(CW_LOG_INFO, "SIGHUP: reloading thresholds, station policies; reopening logs");
  cw_config_defaults(nc);
  if (a->config_path[0] && cw_config_load(nc, a->config_path, err, sizeof err) != 0) {
    cw_log(CW_LOG_ERROR, "reload: %s (keeping the running configuration)", err);
  } else {
    /* thresholds go to each worker's engine through its control queue; the
     * other sections need a restart (connections, rings, paths) */
    cw_ctl_t *c = calloc(1, sizeof *c);
    if (c) {
      c->type = CW_CTL_DETECT_CFG;
      c->det = nc->det;
      all_post(a, CW_CTL_ALL, c);
    }
    cw_log_set_level(nc->log_level);
  }
  free(nc);
  if (a->writer) cw_writer_reload(a->writer);
  for (int g = 0; g < a->ndbw; g++) cw_writer_reload(a->dbw[g]);
  if (a->sink) cw_alert_sink_reopen(a->sink);
  if (a->deadletter) cw_deadletter_reopen(a->deadletter);
}

/* A signal only sets state: the stop sequence runs once uv_run returns. */
static void on_signal(uv_signal_t *s, int signum) {
  app_t *a = s->data;
  if (signum == SIGHUP) return reload(a);
  a->stop_signal = signum;
  uv_stop(a->loop);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  sd_notify(0, "WATCHDOG=1");
}

static void start_loop_handles(app_t *a) {
  uv_signal_init(a->loop, &a->sigterm);
  uv_signal_init(a->loop, &a->sigint);
  uv_signal_init(a->loop, &a->sighup);
  a->sigterm.data = a->sigint.data = a->sighup.data = a;
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  uv_signal_start(&a->sigint, on_signal, SIGINT);
  uv_signal_start(&a->sighup, on_signal, SIGHUP);
  a->signals_on = 1;
  uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
    uint64_t every_ms = wd_usec / 2000; /* twice per period, as sd_watchdog_enabled(3) advises */
    uv_timer_init(a->loop, &a->watchdog);
    uv_timer_start(&a->watchdog, on_watchdog, every_ms ? every_ms : 1, every_ms ? every_ms : 1);
    a->watchdog_on = 1;
  }
}

static int parse_args(int argc, char **argv, const char **path, int *check) {
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "-c") || !strcmp(s, "--config")) {
      if (++i >= argc) {
        fprintf(stderr, "chargewatchd: %s needs a file name\n", s);
        return 2;
      }
      *path = argv[i];
    } else if (!strncmp(s, "--config=", 9)) {
      *path = s + 9;
    } else if (!strcmp(s, "-f") || !strcmp(s, "--foreground")) {
      /* always in the foreground */
    } else if (!strcmp(s, "--check-config")) {
      *check = 1;
    } else if (!strcmp(s, "--version") || !strcmp(s, "-V")) {
      printf("chargewatchd %s\n", CW_VERSION);
      return 0;
    } else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "chargewatchd: unknown argument '%s'\n", s);
      usage(stderr);
      return 2;
    }
  }
  return -1; /* carry on */
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int check = 0, rc, status = 1;
  char err[512];

  if ((rc = parse_args(argc, argv, &path, &check)) >= 0) return rc;
  cw_json_arena_install(); /* cJSON's hooks, before any thread uses cJSON */
  app_t *a = calloc(1, sizeof *a);
  if (!a) return 1;
  cw_config_defaults(&a->cfg);
  if (!path && access(DEFAULT_CONFIG, F_OK) == 0) path = DEFAULT_CONFIG;
  if (path) {
    snprintf(a->config_path, sizeof a->config_path, "%s", path);
    if (cw_preflight_file(path, err, sizeof err)) { /* -c /tmp: refuse, not defaults */
      fprintf(stderr, "chargewatchd: %s\n", err);
      goto out_free;
    }
    if (cw_config_load(&a->cfg, path, err, sizeof err) != 0) {
      fprintf(stderr, "chargewatchd: %s\n", err);
      goto out_free;
    }
  }
  cw_decode_cfg_t dc;
  if (cw_config_decode_cfg(&a->cfg, &dc) != 0) {
    fprintf(stderr, "chargewatchd: topic patterns do not compile\n");
    goto out_free;
  }
  if (cw_preflight(&a->cfg, err, sizeof err)) { /* what start-up would fail on */
    fprintf(stderr, "chargewatchd: %s\n", err);
    goto out_free;
  }
  if (check && cw_preflight_strict(&a->cfg, err, sizeof err)) { /* what is ambiguous */
    fprintf(stderr, "chargewatchd: %s\n", err);
    goto out_free;
  }
  if (check) {
    printf("config OK\n");
    status = 0;
    goto out_free;
  }

  cw_log_set_level(a->cfg.log_level);
  if (a->cfg.duplicate[0]) cw_log(CW_LOG_WARN, "%s (the later value is used)", a->cfg.duplicate);
  int holder;
  if (cw_instance_lock(a->cfg.spool_dir, &holder, err, sizeof err)) { /* one per configuration */
    cw_log(CW_LOG_ERROR, "%s", err); /* stderr: the journal under systemd */
    goto out_free;
  }
  signal(SIGPIPE, SIG_IGN);
  a->loop = uv_default_loop();
  a->started_ms = cw_now_ms();
  a->env = (cw_env_t){.cfg = &a->cfg, .m = &a->m, .stopping = &a->stopping};
  cw_idgen_init(&a->ids, cw_now_us()); /* the writer raises it past the largest stored id */
  cw_log(CW_LOG_INFO, "chargewatchd %s starting (%s, %d worker%s)", CW_VERSION,
         path ? path : "built-in defaults", a->cfg.workers, a->cfg.workers == 1 ? "" : "s");

  if (create_parts(a, &dc)) goto out_stop;
  cw_sight_cfg_t bc = {.env = &a->env, .loop = a->loop, .ids = &a->ids, .ctl = {a, all_post, all_route},
                       .port = {a, sight_stalled_ms, sight_up, sight_shards_init, sight_shards_tick,
                                sight_emit, publisher_tick}};
  /* the engines start blind: nothing judged before the first connect */
  if ((rc = cw_sight_start(&bc, &a->sight))) {
    cw_log(CW_LOG_ERROR, "blindness tick: %s", strerror(-rc));
    goto out_stop;
  }
  for (int i = 0; i < a->npipes; i++)
    if (cw_pipeline_start(a->pipes[i])) goto out_stop;
  if ((rc = cw_writer_start(a->writer))) {
    cw_log(CW_LOG_ERROR, "writer: cannot start: %s", strerror(-rc));
    goto out_stop;
  }
  for (int g = 0; g < a->ndbw; g++)
    if ((rc = cw_writer_start(a->dbw[g]))) {
      cw_log(CW_LOG_ERROR, "writer %s: cannot start: %s", a->dbw_spool[g], strerror(-rc));
      goto out_stop;
    }
  /* Signals are ours from here on. A SIGTERM during the start-up above (the
   * writer may spend seconds waiting for the database) takes its default
   * action, which loses nothing: no message has been consumed yet. */
  start_loop_handles(a);
  reconcile_retained(a);
  cw_mqtt_out_start(a->mqtt_out); /* failures are retried by their timers */
  if (!a->cfg.shards && cw_shards_journal_start(a->shards)) goto out_stop;
  cw_mqtt_in_start(a->mqtt_in);
  if (a->cfg.shards) { /* the shard clients connect once their lease is held */
    cw_lease_cfg_t lc = {.env = &a->env,
                         .ids = &a->ids,
                         .port = {a, all_post, all_route},
                         .taking = cw_shards_taking,
                         .acquired = cw_shards_acquired,
                         .lost = cw_shards_lost,
                         .up = cw_shards_up,
                         .reconnect = cw_shards_reconnect,
                         .release = cw_shards_release,
                         .ctx = a->shards};
    if ((rc = cw_lease_start(&lc, &a->lease))) {
      cw_log(CW_LOG_ERROR, "cluster: lease thread: %s", strerror(-rc));
      goto out_stop;
    }
  }
  cw_http_cfg_t hc = {.env = &a->env,
                      .loop = a->loop,
                      .started_ms = a->started_ms,
                      .rings = ring_gauges,
                      .rings_ctx = a,
                      .shards = cw_shards_held,
                      .shards_ctx = a->shards,
                      .db_refusal = db_refusal,
                      .db_refusal_ctx = a};
  if ((rc = cw_http_start(&hc, &a->http))) cw_log(CW_LOG_ERROR, "http: disabled (%s)", uv_strerror(rc));
  sd_notify(0, "READY=1\nSTATUS=running");
  cw_log(CW_LOG_INFO, "running");

  uv_run(a->loop, UV_RUN_DEFAULT); /* until SIGTERM/SIGINT (uv_stop) */
  status = 0;
out_stop:
  stop_parts(a);
  free_parts(a);
  if (status == 0) cw_log(CW_LOG_INFO, "exit");
out_free:
  free(a);
  return status;
}
