/* main.c - chargewatchd: command line, start-up in dependency order, the
 * libuv main loop (signals, systemd notify/watchdog, alert sinks, HTTP) and
 * the graceful shutdown of DESIGN.md section 5: stop consuming, drain the
 * rings, flush or spool, exit 0 within shutdown_timeout_s.
 * (cw_now_ms, cw_daemon_route and cw_daemon_alert_id are in worker.c, which
 * the unit tests link.) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define DEFAULT_CONFIG "/etc/chargewatch/chargewatch.conf"

typedef struct {
  cw_daemon_t *d;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t watchdog;
  int watchdog_on;
  /* shutdown deadline, enforced by a thread because the stop sequence below
   * blocks the loop (joins, flushes) and a loop timer could not fire */
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

static void *deadline_main(void *arg) {
  app_t *a = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += a->d->cfg.shutdown_timeout_s;
  pthread_mutex_lock(&a->mu);
  while (!a->finished) {
    if (pthread_cond_timedwait(&a->cv, &a->mu, &until) == ETIMEDOUT && !a->finished) {
      cw_log(CW_LOG_ERROR, "shutdown took longer than shutdown_timeout_s=%d: exiting now",
             a->d->cfg.shutdown_timeout_s);
      _exit(1);
    }
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

static void close_cb_noop(uv_handle_t *h) { (void)h; }

static void shutdown_daemon(app_t *a) {
  cw_daemon_t *d = a->d;
  if (atomic_exchange(&d->stopping, 1)) return;
  int64_t t0 = cw_now_ms();
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  cw_log(CW_LOG_INFO, "shutting down: stop consuming, drain, flush (limit %d s)",
         d->cfg.shutdown_timeout_s);
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  if (pthread_create(&a->deadline, NULL, deadline_main, a) == 0) a->deadline_started = 1;

  if (d->mqtt) cw_mqtt_pause(d->mqtt);            /* 1. no new messages; session kept */
  for (int i = 0; i < d->nworkers; i++)           /* 2. every ingest ring drained */
    cw_worker_stop(d->workers[i]);
  if (d->alerts) cw_alerts_drain(d->alerts);      /* 3. last alerts: log, MQTT, writer */
  if (d->writer) cw_writer_stop(d->writer);       /* 4. readings + alerts flushed or spooled */
  if (d->mqtt) cw_mqtt_stop(d->mqtt);             /* 5. queued alert publishes out */
  cw_log(CW_LOG_INFO, "stopped in %lld ms: %llu readings accepted, %llu rows committed, "
         "%llu batches spooled",
         (long long)(cw_now_ms() - t0), (unsigned long long)atomic_load(&d->m.readings_accepted),
         (unsigned long long)atomic_load(&d->m.rows_committed),
         (unsigned long long)atomic_load(&d->m.batches_spooled));

  /* close the loop's handles; uv_run returns once they are gone */
  cw_mqtt_free(d->mqtt);
  d->mqtt = NULL;
  cw_alerts_free(d->alerts);
  d->alerts = NULL;
  uv_close((uv_handle_t *)&a->sigterm, close_cb_noop);
  uv_close((uv_handle_t *)&a->sigint, close_cb_noop);
  uv_close((uv_handle_t *)&a->sighup, close_cb_noop);
  if (a->watchdog_on) uv_close((uv_handle_t *)&a->watchdog, close_cb_noop);
  cw_http_stop(d->http);
  d->http = NULL;
}

static void reload(app_t *a) {
  cw_daemon_t *d = a->d;
  cw_config_t *nc = malloc(sizeof *nc);
  char err[512];
  if (!nc) return;
  cw_log(CW_LOG_INFO, "SIGHUP: reloading thresholds, station policies; reopening logs");
  cw_config_defaults(nc);
  if (d->config_path[0] && cw_config_load(nc, d->config_path, err, sizeof err) != 0) {
    cw_log(CW_LOG_ERROR, "reload: %s (keeping the running configuration)", err);
  } else {
    /* thresholds go to each worker's engine through its control queue; the
     * other sections need a restart (connections, rings, paths) */
    for (int i = 0; i < d->nworkers; i++) {
      cw_ctl_t *c = calloc(1, sizeof *c);
      if (!c) break;
      c->type = CW_CTL_DETECT_CFG;
      c->det = nc->det;
      cw_worker_post(d->workers[i], c);
    }
    cw_log_set_level(nc->log_level);
  }
  free(nc);
  if (d->writer) cw_writer_reload(d->writer);
  if (d->alerts) cw_alerts_reopen(d->alerts);
  if (d->deadletter) cw_deadletter_reopen(d->deadletter);
}

static void on_signal(uv_signal_t *s, int signum) {
  app_t *a = s->data;
  if (signum == SIGHUP) reload(a);
  else shutdown_daemon(a);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  sd_notify(0, "WATCHDOG=1");
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
  app_t a = {0};

  if ((rc = parse_args(argc, argv, &path, &check)) >= 0) return rc;
  cw_daemon_t *d = calloc(1, sizeof *d);
  if (!d) return 1;
  a.d = d;
  cw_config_defaults(&d->cfg);
  if (!path && access(DEFAULT_CONFIG, F_OK) == 0) path = DEFAULT_CONFIG;
  if (path) {
    snprintf(d->config_path, sizeof d->config_path, "%s", path);
    if (cw_config_load(&d->cfg, path, err, sizeof err) != 0) {
      fprintf(stderr, "chargewatchd: %s\n", err);
      goto out_free;
    }
  }
  cw_decode_cfg_t dc;
  if (cw_config_decode_cfg(&d->cfg, &dc) != 0) {
    fprintf(stderr, "chargewatchd: topic patterns do not compile\n");
    goto out_free;
  }
  if (check) {
    printf("config OK\n");
    status = 0;
    goto out_free;
  }

  cw_log_set_level(d->cfg.log_level);
  signal(SIGPIPE, SIG_IGN);
  d->loop = uv_default_loop();
  d->started_ms = cw_now_ms();
  /* ids stay unique across restarts even without a database: the clock in
   * ms only moves forward past the last run's ids at < 1 alert per ms;
   * the writer raises it past the largest stored id */
  atomic_store(&d->next_alert_id, d->started_ms);
  d->nworkers = d->cfg.workers;
  cw_log(CW_LOG_INFO, "chargewatchd %s starting (%s, %d worker%s)", CW_VERSION,
         path ? path : "built-in defaults", d->nworkers, d->nworkers == 1 ? "" : "s");

  if ((rc = cw_deadletter_open(&d->deadletter, d->cfg.deadletter, d->cfg.deadletter_max_bytes))) {
    cw_log(CW_LOG_ERROR, "dead-letter file %s: %s", d->cfg.deadletter, strerror(-rc));
    goto out_free;
  }
  cw_deadletter_bind(d->deadletter, d);
  d->workers = calloc((size_t)d->nworkers, sizeof *d->workers);
  if (!d->workers) goto out_stop;
  for (int i = 0; i < d->nworkers; i++)
    if ((rc = cw_worker_create(d, i, &d->workers[i]))) {
      cw_log(CW_LOG_ERROR, "worker %d: %s", i, strerror(-rc));
      goto out_stop;
    }
  if ((rc = cw_alerts_create(d, &d->alerts))) {
    cw_log(CW_LOG_ERROR, "alert sinks: %s", strerror(-rc));
    goto out_stop;
  }
  if ((rc = cw_mqtt_create(d, &d->mqtt))) goto out_stop;
  rc = cw_writer_create(d, &d->writer);
  if (!d->writer) {
    cw_log(CW_LOG_ERROR, "writer: %s", strerror(rc < 0 ? -rc : EIO));
    goto out_stop;
  }
  if (rc) cw_log(CW_LOG_WARN, "writer: database not ready (%s): spooling until it is", strerror(-rc));

  for (int i = 0; i < d->nworkers; i++)
    if ((rc = cw_worker_start(d->workers[i]))) {
      cw_log(CW_LOG_ERROR, "worker %d: cannot start: %s", i, strerror(-rc));
      goto out_stop;
    }
  if ((rc = cw_writer_start(d->writer))) {
    cw_log(CW_LOG_ERROR, "writer: cannot start: %s", strerror(-rc));
    goto out_stop;
  }
  /* Signals are ours from here on. A SIGTERM during the start-up above (the
   * writer may spend seconds retrying the database) takes its default
   * action, which loses nothing: no message has been consumed yet. */
  uv_signal_init(d->loop, &a.sigterm);
  uv_signal_init(d->loop, &a.sigint);
  uv_signal_init(d->loop, &a.sighup);
  a.sigterm.data = a.sigint.data = a.sighup.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sighup, on_signal, SIGHUP);

  cw_mqtt_start(d->mqtt); /* failures are retried by its timer */
  if ((rc = cw_http_start(d, &d->http)))
    cw_log(CW_LOG_ERROR, "http: disabled (%s)", uv_strerror(rc));

  uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
    uint64_t every_ms = wd_usec / 2000; /* twice per period, as sd_watchdog_enabled(3) advises */
    uv_timer_init(d->loop, &a.watchdog);
    uv_timer_start(&a.watchdog, on_watchdog, every_ms ? every_ms : 1, every_ms ? every_ms : 1);
    a.watchdog_on = 1;
  }
  sd_notify(0, "READY=1\nSTATUS=running");
  cw_log(CW_LOG_INFO, "running");

  uv_run(d->loop, UV_RUN_DEFAULT);
  status = 0;
  goto out_free_all;

out_stop:
  /* start-up failed after threads may have started: stop them the same way */
  if (d->mqtt) cw_mqtt_pause(d->mqtt);
  for (int i = 0; d->workers && i < d->nworkers; i++)
    if (d->workers[i]) cw_worker_stop(d->workers[i]);
  if (d->writer) cw_writer_stop(d->writer);
out_free_all:
  cw_mqtt_free(d->mqtt);
  cw_alerts_free(d->alerts);
  if (d->loop) {
    uv_run(d->loop, UV_RUN_NOWAIT); /* run the close callbacks */
    uv_loop_close(d->loop);
  }
  cw_writer_free(d->writer);
  for (int i = 0; d->workers && i < d->nworkers; i++) cw_worker_free(d->workers[i]);
  free(d->workers);
  cw_deadletter_close(d->deadletter);
  if (a.deadline_started) {
    pthread_mutex_lock(&a.mu);
    a.finished = 1;
    pthread_cond_signal(&a.cv);
    pthread_mutex_unlock(&a.mu);
    pthread_join(a.deadline, NULL);
  }
  if (status == 0) cw_log(CW_LOG_INFO, "exit");
out_free:
  free(d);
  return status;
}
