/* http.c - the operator's HTTP endpoint on the main loop: GET /metrics
 * (Prometheus text format 0.0.4) and GET /healthz (200, or 503 naming the
 * unreachable dependency). Deliberately minimal HTTP/1.0: one bounded
 * request buffer per connection, one response, then close. Loopback by
 * default; "" in [http] listen turns it off. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "commit.h"

#include "http.h"

#define REQ_MAX 2048     /* request line + headers; more is a 431-ish 400 */
#define MAX_CONNS 64     /* concurrent scrapes; more are closed at once */
#define IDLE_MS 5000     /* a client that does not finish its request in time */

#define FDS_CACHE_MS 5000 /* process_open_fds by listing /proc/self/fd: at most this often */

struct cw_http {
  cw_http_cfg_t cfg;
  uv_tcp_t server;
  int nconns;
  int closing;
  int statm_fd;     /* /proc/self/statm, kept open: read again from offset 0 */
  int64_t fds_at_ms; /* when open_fds was counted by listing (0: never) */
  unsigned long long open_fds;
};

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wr;
  cw_http_t *h;
  char req[REQ_MAX];
  size_t n;
  int done;     /* response queued */
  int pending;  /* handles still to close */
  char *resp;
} conn_t;

/* ---------------------------------------------------------------- text */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  for (;;) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < b->cap - b->n) {
      b->n += (size_t)k;
      return;
    }
    size_t ncap = b->cap * 2 + (size_t)k;
    char *np = realloc(b->p, ncap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = ncap;
  }
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static void counter(sbuf_t *b, const char *name, const char *help, unsigned long long v) {
  sb_printf(b, "# HELP chargewatch_%s %s\n# TYPE chargewatch_%s counter\nchargewatch_%s %llu\n",
            name, help, name, name, v);
}
static void gauge(sbuf_t *b, const char *name, const char *help, unsigned long long v) {
  sb_printf(b, "# HELP chargewatch_%s %s\n# TYPE chargewatch_%s gauge\nchargewatch_%s %llu\n", name,
            help, name, name, v);
}

static void histogram(sbuf_t *b, const char *name, const char *help, cw_hist_t *hg) {
  sb_printf(b, "# HELP chargewatch_%s %s\n# TYPE chargewatch_%s histogram\n", name, help, name);
  unsigned long long cum = 0;
  for (int i = 0; i <= CW_HIST_NB; i++) {
    cum += LOAD(hg->b[i]);
    if (i < CW_HIST_NB)
      sb_printf(b, "chargewatch_%s_bucket{le=\"%g\"} %llu\n", name, cw_hist_bounds[i], cum);
    else
      sb_printf(b, "chargewatch_%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
  }
  /* count = the +Inf bucket, read once (the atomics move meanwhile) */
  sb_printf(b, "chargewatch_%s_sum %.3f\nchargewatch_%s_count %llu\n", name,
            (double)LOAD(hg->sum_ms) / 1000.0, name, cum);
}

static void latency_metrics(sbuf_t *b, cw_metrics_t *m) {
  histogram(b, "ingest_lag_seconds", "Receive time minus reading ts, per accepted reading.",
            &m->ingest_lag);
  histogram(b, "publish_to_store_seconds", "Reading ts to its COPY commit, per stored row.",
            &m->publish_to_store);
  histogram(b, "publish_to_alert_seconds",
            "Reading ts to the alert event it caused leaving the daemon (raised, escalated, repeated).",
            &m->publish_to_alert);
  sb_printf(b, "# HELP chargewatch_alerts_open Alerts not closed in the database, by kind, severity"
               " and state (refreshed every 10 s while connected).\n"
               "# TYPE chargewatch_alerts_open gauge\n");
  for (int k = 0; k < CW_KIND__COUNT; k++)
    for (int s = CW_SEV_WARNING; s <= CW_SEV_CRITICAL; s++)
      for (int st = 0; st <= CW_ALERT_RECTIFIED; st++)
        if (st != CW_ALERT_CLOSED)
          sb_printf(b, "chargewatch_alerts_open{kind=\"%s\",severity=\"%s\",state=\"%s\"} %llu\n",
                    cw_kind_name((cw_kind_t)k), cw_severity_name((cw_severity_t)s),
                    cw_alert_state_name((cw_alert_state_t)st), LOAD(m->alerts_open[k][s][st]));
}

/* Open file descriptors: the size the kernel gives /proc/self/fd (Linux
 * 6.2 and later: the count, at the cost of one stat), else by listing the
 * directory, which costs a dentry lookup per descriptor: then counted at most
 * every FDS_CACHE_MS (a scrape every 15-60 s always sees a fresh count). */
static unsigned long long open_fds(cw_http_t *h) {
  struct stat st;
  if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0) return (unsigned long long)st.st_size;
  int64_t now = cw_now_ms();
  if (h->fds_at_ms && now - h->fds_at_ms < FDS_CACHE_MS) return h->open_fds;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  unsigned long long n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  h->open_fds = n ? n - 1 : 0; /* not d's own */
  h->fds_at_ms = now;
  return h->open_fds;
}

/* The standard process_* metrics (Prometheus client conventions), from
 * getrusage, getrlimit and /proc/self; a value the system does not give is
 * left out rather than reported as 0. */
static void process_metrics(cw_http_t *h, sbuf_t *b) {
  struct rusage ru;
  struct rlimit rl;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    sb_printf(b, "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n"
                 "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n",
              (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  char buf[128];
  unsigned long long size, rss;
  if (h->statm_fd < 0) h->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  ssize_t k = h->statm_fd >= 0 ? pread(h->statm_fd, buf, sizeof buf - 1, 0) : -1;
  if (k > 0 && (buf[k] = 0, sscanf(buf, "%llu %llu", &size, &rss) == 2))
    sb_printf(b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                 "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
              rss * (unsigned long long)sysconf(_SC_PAGESIZE));
  unsigned long long n = open_fds(h);
  if (n)
    sb_printf(b, "# HELP process_open_fds Number of open file descriptors.\n"
                 "# TYPE process_open_fds gauge\nprocess_open_fds %llu\n", n);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    sb_printf(b, "# HELP process_max_fds Maximum number of open file descriptors.\n"
                 "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
}

/* [cluster]: what this process holds of the shards, and the lease events */
static void cluster_metrics(const cw_http_cfg_t *h, sbuf_t *b) {
  cw_metrics_t *m = h->env->m;
  int n = h->env->cfg->shards;
  if (!n || !h->shards) return;
  uint64_t owned = 0, sighted = 0;
  h->shards(h->shards_ctx, &owned, &sighted);
  gauge(b, "shards_owned", "[cluster] Shards whose lease this process holds.",
        (unsigned long long)__builtin_popcountll(owned));
  sb_printf(b, "# HELP chargewatch_shard_owned 1 while this process holds the shard's lease.\n"
               "# TYPE chargewatch_shard_owned gauge\n");
  for (int k = 0; k < n; k++)
    sb_printf(b, "chargewatch_shard_owned{shard=\"%d\"} %d\n", k, (int)(owned >> k & 1));
  sb_printf(b, "# HELP chargewatch_shard_sighted 1 while the shard is owned and caught up (its "
               "stations judged).\n# TYPE chargewatch_shard_sighted gauge\n");
  for (int k = 0; k < n; k++)
    sb_printf(b, "chargewatch_shard_sighted{shard=\"%d\"} %d\n", k,
              (int)(sighted >> k & 1));
  static const char *ev[] = {"acquired", "released", "lost"};
  sb_printf(b, "# HELP chargewatch_shard_leases_total Shard leases acquired, released "
               "(rebalance) and lost by this process.\n# TYPE chargewatch_shard_leases_total counter\n");
  for (int i = 0; i < CW_LEASE__COUNT; i++)
    sb_printf(b, "chargewatch_shard_leases_total{event=\"%s\"} %llu\n", ev[i],
              (unsigned long long)atomic_load(&m->lease_events[i]));
}

/* Rendered on the main loop: counters are relaxed atomics written by other
 * threads; a scrape sees each one whole, not all of them at one instant. */
static void render_metrics(cw_http_t *http, sbuf_t *b) {
  const cw_http_cfg_t *h = &http->cfg;
  cw_metrics_t *m = h->env->m;
  gauge(b, "up", "1 while both the database and the broker connections are up.",
        atomic_load(&m->mqtt_connected) && atomic_load(&m->db_connected));
  sb_printf(b, "# HELP chargewatch_build_info Version and source commit of this build.\n"
               "# TYPE chargewatch_build_info gauge\n"
               "chargewatch_build_info{version=\"%s\",commit=\"%s\"} 1\n",
            CW_VERSION, CW_COMMIT);
  sb_printf(b, "# HELP chargewatch_start_time_seconds Start time, seconds since the epoch.\n"
               "# TYPE chargewatch_start_time_seconds gauge\n"
               "chargewatch_start_time_seconds %.3f\n",
            (double)h->started_ms / 1000.0);
  sb_printf(b, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
               "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
            (double)h->started_ms / 1000.0);
  process_metrics(http, b);
  latency_metrics(b, m);
  counter(b, "partitions_dropped_total", "Readings partitions dropped by [postgres] retain_days.",
          LOAD(m->partitions_dropped));
  gauge(b, "spool_limit_bytes", "[spool] max_bytes: the readings spool's bound.",
        (unsigned long long)h->env->cfg->spool_max_bytes);
  gauge(b, "mqtt_connected", "1 while the ingest MQTT client is connected.",
        (unsigned long long)atomic_load(&m->mqtt_connected));
  gauge(b, "alert_publisher_connected", "1 while the alert publisher's MQTT client is connected.",
        (unsigned long long)atomic_load(&m->alert_pub_connected));
  gauge(b, "db_connected", "1 while the writer is connected to PostgreSQL.",
        (unsigned long long)atomic_load(&m->db_connected));
  counter(b, "messages_received_total", "MQTT telemetry messages received.", LOAD(m->msgs_received));
  counter(b, "ingest_stalls_total", "Waits of the MQTT receive thread on a full ingest ring.",
          LOAD(m->ingest_stalls));
  counter(b, "readings_accepted_total", "Valid readings handed to the writer.",
          LOAD(m->readings_accepted));
  sb_printf(b, "# HELP chargewatch_rejects_total Rejected inputs by reason.\n"
               "# TYPE chargewatch_rejects_total counter\n");
  for (int i = 1; i < CW_REJ__COUNT; i++)
    sb_printf(b, "chargewatch_rejects_total{reason=\"%s\"} %llu\n", cw_reject_name((cw_reject_t)i),
              LOAD(m->rejects[i]));
  counter(b, "rows_committed_total", "Rows committed to the readings table.", LOAD(m->rows_committed));
  counter(b, "batches_committed_total", "COPY batches committed.", LOAD(m->batches_committed));
  counter(b, "batches_spooled_total", "Batches written to the disk spool.", LOAD(m->batches_spooled));
  gauge(b, "spool_bytes", "Bytes waiting in the disk spool.", LOAD(m->spool_bytes));
  counter(b, "spool_replayed_total", "Spooled batches replayed into the database.",
          LOAD(m->spool_replayed));
  counter(b, "writer_stalls_total", "Waits of a worker on a full reading ring.", LOAD(m->writer_stalls));
  sb_printf(b, "# HELP chargewatch_alert_events_total Alert events by kind, severity and event.\n"
               "# TYPE chargewatch_alert_events_total counter\n");
  for (int k = 0; k < CW_KIND__COUNT; k++)
    for (int s = CW_SEV_NONE; s <= CW_SEV_CRITICAL; s++)
      for (int e = 0; e <= CW_EV_RECTIFIED; e++) {
        unsigned long long v = LOAD(m->alert_events_by[k][s][e]);
        /* every kind x warning/critical x raised is always there (rate() needs a
         * series from the start); other combinations once they happened */
        if (v || (s != CW_SEV_NONE && e == CW_EV_RAISED))
          sb_printf(b, "chargewatch_alert_events_total{kind=\"%s\",severity=\"%s\",event=\"%s\"} %llu\n",
                    cw_kind_name((cw_kind_t)k), cw_severity_name((cw_severity_t)s),
                    cw_event_name((cw_event_t)e), v);
      }
  int64_t lc = atomic_load(&m->last_commit_ms);
  if (!lc) lc = h->started_ms; /* a quiet start is not "5 minutes without a commit" at once */
  sb_printf(b, "# HELP chargewatch_last_commit_timestamp_seconds Wall clock of the last readings commit"
               " (the start time before the first).\n# TYPE chargewatch_last_commit_timestamp_seconds gauge\n"
               "chargewatch_last_commit_timestamp_seconds %.3f\n", (double)lc / 1000.0);
  counter(b, "alerts_published_total", "Alert publishes acknowledged by the broker.",
          LOAD(m->alerts_published));
  counter(b, "alerts_stored_total", "Alert event rows committed.", LOAD(m->alerts_stored));
  counter(b, "deadletter_written_total", "Lines written to the dead-letter file.",
          LOAD(m->deadletter_written));
  gauge(b, "sockets_tracked", "Sockets with detection state.", LOAD(m->sockets_tracked));
  counter(b, "sensor_events_total",
          "Temperature steps with no current and no continuation, judged sensor events (no alert).",
          LOAD(m->sensor_events));
  gauge(b, "sensor_suspect", "Sockets whose temperature probe produced a sensor event.",
        LOAD(m->sensor_suspect));
  cluster_metrics(h, b);
  sb_printf(b, "# HELP chargewatch_ring_used_bytes Bytes queued in each ring.\n"
               "# TYPE chargewatch_ring_used_bytes gauge\n");
  cw_http_rings_t r;
  for (int i = 0; h->rings && h->rings(h->rings_ctx, i, &r) == 0; i++) {
    sb_printf(b, "chargewatch_ring_used_bytes{ring=\"ingest\",worker=\"%d\"} %zu\n", i, r.ingest_used);
    sb_printf(b, "chargewatch_ring_used_bytes{ring=\"readings\",worker=\"%d\"} %zu\n", i,
              r.readings_used);
    sb_printf(b, "chargewatch_ring_used_bytes{ring=\"alerts\",worker=\"%d\"} %zu\n", i, r.alerts_used);
  }
  sb_printf(b, "# HELP chargewatch_ring_capacity_bytes Capacity of each ring.\n"
               "# TYPE chargewatch_ring_capacity_bytes gauge\n");
  for (int i = 0; h->rings && h->rings(h->rings_ctx, i, &r) == 0; i++) {
    sb_printf(b, "chargewatch_ring_capacity_bytes{ring=\"ingest\",worker=\"%d\"} %llu\n", i,
              (unsigned long long)r.ingest_cap);
    sb_printf(b, "chargewatch_ring_capacity_bytes{ring=\"readings\",worker=\"%d\"} %llu\n", i,
              (unsigned long long)r.readings_cap);
    sb_printf(b, "chargewatch_ring_capacity_bytes{ring=\"alerts\",worker=\"%d\"} %llu\n", i,
              (unsigned long long)r.alerts_cap);
  }
}

/* ---------------------------------------------------------------- conns */

static void conn_closed(uv_handle_t *hd) {
  conn_t *c = hd->data;
  if (--c->pending > 0) return;
  c->h->nconns--;
  free(c->resp);
  free(c);
}

static void conn_close(conn_t *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, conn_closed);
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_written(uv_write_t *wr, int status) {
  (void)status;
  conn_close(wr->data);
}

static void respond(conn_t *c, int code, const char *ctype, const char *body, size_t blen,
                    int head_only) {
  const char *reason = code == 200   ? "OK"
                       : code == 400 ? "Bad Request"
                       : code == 404 ? "Not Found"
                       : code == 405 ? "Method Not Allowed"
                                     : "Service Unavailable";
  sbuf_t b = {malloc(256 + blen), 0, 256 + blen, 0};
  if (!b.p) return conn_close(c);
  sb_printf(&b, "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
            code, reason, ctype, blen);
  if (!head_only && !b.oom) {
    memcpy(b.p + b.n, body, blen);
    b.n += blen;
  }
  if (b.oom) {
    free(b.p);
    return conn_close(c);
  }
  c->done = 1;
  c->resp = b.p;
  uv_buf_t buf = uv_buf_init(b.p, (unsigned)b.n);
  c->wr.data = c;
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written)) conn_close(c);
}

static void text(conn_t *c, int code, const char *body, int head_only) {
  respond(c, code, "text/plain; charset=utf-8", body, strlen(body), head_only);
}

static void handle(conn_t *c) {
  const cw_http_cfg_t *hc = &c->h->cfg;
  char *eol = memchr(c->req, '\n', c->n);
  char method[8], path[128], version[16];
  *eol = 0;
  /* request line: METHOD SP PATH SP HTTP/x.y */
  if (sscanf(c->req, "%7s %127s %15s", method, path, version) != 3 ||
      strncmp(version, "HTTP/1.", 7) != 0 || path[0] != '/')
    return text(c, 400, "bad request\n", 0);
  int head = !strcmp(method, "HEAD");
  if (strcmp(method, "GET") && !head) return text(c, 405, "method not allowed\n", 0);
  char *q = strchr(path, '?');
  if (q) *q = 0;
  if (!strcmp(path, "/metrics")) {
    sbuf_t b = {malloc(16384), 0, 16384, 0};
    if (!b.p) return conn_close(c);
    render_metrics(c->h, &b);
    if (b.oom) {
      free(b.p);
      return conn_close(c);
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.n, head);
    free(b.p);
    return;
  }
  if (!strcmp(path, "/healthz")) {
    int db = atomic_load(&hc->env->m->db_connected), mq = atomic_load(&hc->env->m->mqtt_connected);
    if (db && mq) return text(c, 200, "ok\n", head);
    char body[600], why[400];
    if (!db && hc->db_refusal && hc->db_refusal(hc->db_refusal_ctx, why, sizeof why))
      /* the server's own words, as logged (credentials cut out) */
      snprintf(body, sizeof body, "unavailable: database (refused: %s)%s\n", why, mq ? "" : " broker");
    else
      snprintf(body, sizeof body, "unavailable:%s%s\n", db ? "" : " database", mq ? "" : " broker");
    return text(c, 503, body, head);
  }
  text(c, 404, "not found\n", head);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  conn_t *c = hd->data;
  (void)suggested;
  *buf = uv_buf_init(c->req + c->n, (unsigned)(REQ_MAX - 1 - c->n));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  (void)buf;
  if (c->done) return;
  if (nread < 0) return conn_close(c);
  c->n += (size_t)nread;
  c->req[c->n] = 0;
  /* HTTP/1.0 and 1.1 requests end their headers with an empty line */
  if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) return handle(c);
  if (memchr(c->req, 0, c->n)) return text(c, 400, "bad request\n", 0);
  if (c->n >= REQ_MAX - 1) return text(c, 400, "request too large\n", 0);
}

static void on_idle(uv_timer_t *t) { conn_close(t->data); }

static void on_conn(uv_stream_t *server, int status) {
  cw_http_t *h = server->data;
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->h = h;
  uv_tcp_init(server->loop, &c->tcp);
  uv_timer_init(server->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->pending = 2;
  h->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) || h->nconns > MAX_CONNS) return conn_close(c);
  uv_timer_start(&c->timer, on_idle, IDLE_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) conn_close(c);
}

static void server_closed(uv_handle_t *hd) {
  cw_http_t *h = hd->data;
  if (h->statm_fd >= 0) close(h->statm_fd);
  free(h);
}

int cw_http_start(const cw_http_cfg_t *cfg, cw_http_t **out) {
  const cw_config_t *conf = cfg->env->cfg;
  char host[64];
  int port, rc;
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } addr;
  *out = NULL;
  if (!conf->http_listen[0]) return 0; /* disabled */
  if (cw_config_split_listen(conf->http_listen, host, sizeof host, &port)) return -EINVAL;
  if (uv_ip4_addr(host, port, &addr.in4) && uv_ip6_addr(host, port, &addr.in6)) return -EINVAL;
  cw_http_t *h = calloc(1, sizeof *h);
  if (!h) return -ENOMEM;
  h->cfg = *cfg;
  h->statm_fd = -1;
  uv_tcp_init(cfg->loop, &h->server);
  h->server.data = h;
  if ((rc = uv_tcp_bind(&h->server, &addr.sa, 0)) || (rc = uv_listen((uv_stream_t *)&h->server, 64, on_conn))) {
    cw_log(CW_LOG_ERROR, "http: cannot listen on %s: %s", conf->http_listen, uv_strerror(rc));
    /* the handle lives inside h: libuv frees it through the close callback */
    uv_close((uv_handle_t *)&h->server, server_closed);
    return rc;
  }
  cw_log(CW_LOG_INFO, "http: listening on %s (/metrics, /healthz)", conf->http_listen);
  *out = h;
  return 0;
}

void cw_http_stop(cw_http_t *h) {
  if (!h || h->closing) return;
  h->closing = 1;
  uv_close((uv_handle_t *)&h->server, server_closed);
}
