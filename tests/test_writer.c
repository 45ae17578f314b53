/* test_writer.c - the writer's hand-offs against a real PostgreSQL: the
 * policies and open alerts it restores leave through its control port, it
 * raises the alert ids past the stored ones, an operator NOTIFY (cw_ack in
 * SQL) reaches its command callback as a command control.c accepts, and
 * readings pushed into its ring by another thread while it runs are all
 * committed once, and publish_to_store gets every committed row once (from
 * the writer's own batch and from a spooled one replayed). Two threads:
 * run under ThreadSanitizer by `make check`. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "control.h"
#include "fixture.h"
#include "test.h"

typedef struct cmd_rec {
  pthread_mutex_t mu;
  int n;
  char last[256];
} cmd_rec_t;

static void on_command(void *ctx, const char *payload, size_t len) {
  cmd_rec_t *r = ctx;
  pthread_mutex_lock(&r->mu);
  snprintf(r->last, sizeof r->last, "%.*s", (int)len, payload);
  r->n++;
  pthread_mutex_unlock(&r->mu);
}

static int cmd_count(cmd_rec_t *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

typedef struct producer {
  cw_ring_t *ring;
  int n;
} producer_t;

static void *produce(void *arg) {
  producer_t *p = arg;
  static const _Atomic int never = 0;
  for (int i = 0; i < p->n; i++) {
    cw_reading_t r = {.ts_ms = 1764374400000LL + i * 1000, .socket = (uint8_t)(1 + i % 4),
                      .w = 100, .have = CW_HAVE_W};
    snprintf(r.station, sizeof r.station, "WR%d", i % 3);
    cw_ring_part_t part = {&r, sizeof r};
    if (cw_ring_pushv_wait(p->ring, &part, 1, &never) < 0) break;
  }
  return NULL;
}

CW_TEST(writer_two_threads_handoffs) {
  static cw_fx_t f;
  cmd_rec_t rec = {.mu = PTHREAD_MUTEX_INITIALIZER};
  CW_FX_NEED_PG(&f, "cw_writer_test");
  /* a station, a socket and an open alert already in the database */
  PGconn *c = cw_fx_conn(&f);
  cw_writer_t *w = NULL;
  CHECK_EQ(cw_fx_writer(&f, &w), 0); /* applies the schema */
  cw_writer_free(w);
  cw_fx_exec(c, "INSERT INTO stations(code) VALUES ('WR0'), ('WR1'), ('WR2')");
  cw_fx_exec(c, "INSERT INTO sockets(station, socket) VALUES ('WR0', 1)");
  cw_fx_exec(c, "INSERT INTO alerts(id, station, socket, kind, severity, state, opened_at)"
                " VALUES (9000000000000000 - 5, 'WR0', 1, 'overload', 'warning', 'open', now())");
  int before = cw_fx_nposted(&f);

  cw_ring_t *rings[1] = {&f.ring};
  cw_writer_cfg_t wc = {.env = &f.env, .readings = rings, .nrings = 1, .port = cw_fx_port(&f),
                        .ids = &f.ids, .command = on_command, .command_ctx = &rec};
  CHECK_EQ(cw_writer_create(&wc, &w), 0);
  /* 3 stations + 1 socket + its last ts? (NULL: none) + 1 open alert */
  CHECK_EQ(cw_fx_nposted(&f) - before, 5);
  CHECK_EQ(f.posted_tail->type, CW_CTL_RESTORE_ALERT);
  CHECK_EQ(f.last_target, CW_CTL_BY_STATION);
  CHECK(atomic_load(&f.ids.next) >= 9000000000000000LL - 4);
  CHECK_EQ(cw_writer_start(w), 0);

  producer_t p = {&f.ring, 3000};
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, produce, &p), 0);
  CHECK_EQ(cw_fx_q1(c, "SELECT cw_ack(9000000000000000 - 5, 'psql')::int"), 1);
  for (int i = 0; i < 1000 && cmd_count(&rec) == 0; i++) cw_sleep_ms(10); /* up to 10 s */
  pthread_join(th, NULL);
  cw_writer_stop(w);
  cw_writer_free(w);

  CHECK_EQ(cmd_count(&rec), 1);
  cw_command_t cmd;
  const char *why = NULL;
  CHECK_EQ(cw_command_parse(rec.last, strlen(rec.last), &cmd, &why), CW_REJ_OK);
  CHECK_EQ(cmd.id, 9000000000000000LL - 5);
  CHECK_EQ(cmd.action, CW_EV_ACKNOWLEDGED);
  /* The SQL path records what the database can prove: the role that ran
   * cw_ack ("psql" is only the claimed name, kept in the event detail). */
  CHECK_STR(cmd.by, "postgres");
  CHECK_STR(cmd.station, "WR0");
  CHECK_EQ(cw_fx_q1(c, "SELECT count(*) FROM readings"), 3000);
  CHECK_EQ(atomic_load(&f.m.rows_committed), 3000);
  PQfinish(c);
  cw_fx_free(&f);
}

/* A readings writer ([cluster] shard_conninfo.K): its own spool directory,
 * no policies posted, stations registered in its database; cw_writer_sync
 * returns once every row the ring held is committed and sockets.last_ts
 * written (checked at once, without waiting). */
CW_TEST(writer_readings_only_sync) {
  static cw_fx_t f;
  static char conninfo[sizeof f.cfg.pg_conninfo];
  CW_FX_NEED_PG(&f, "cw_writer_sync_test");
  PGconn *c = cw_fx_conn(&f);
  snprintf(conninfo, sizeof conninfo, "%s", f.cfg.pg_conninfo); /* not the main writer's pointer */
  int before = cw_fx_nposted(&f);
  cw_ring_t *rings[1] = {&f.ring};
  cw_writer_cfg_t wc = {.env = &f.env, .readings = rings, .nrings = 1, .conninfo = conninfo,
                        .spool_sub = "db-test"};
  cw_writer_t *w = NULL;
  CHECK_EQ(cw_writer_create(&wc, &w), 0); /* applies the schema there too */
  CHECK_EQ(cw_fx_nposted(&f) - before, 0);
  char path[256];
  snprintf(path, sizeof path, "%s/db-test/readings", f.spool);
  CHECK_EQ(access(path, F_OK), 0);
  CHECK_EQ(cw_writer_start(w), 0);
  producer_t p = {&f.ring, 500};
  produce(&p);
  CHECK_EQ(cw_writer_sync(w, 20000), 0);
  CHECK_EQ(cw_fx_q1(c, "SELECT count(*) FROM readings"), 500);
  CHECK_EQ(cw_fx_q1(c, "SELECT count(*) FROM stations WHERE code LIKE 'WR%'"), 3);
  CHECK_EQ(cw_fx_q1(c, "SELECT count(*) FROM sockets WHERE last_ts IS NOT NULL"), 12);
  CHECK_EQ(cw_writer_sync(w, 20000), 0); /* nothing new: returns too */
  cw_writer_stop(w);
  CHECK_EQ(atomic_load(&f.m.spool_bytes), 0);
  cw_writer_free(w);
  PQfinish(c);
  cw_fx_free(&f);
}

/* ------------------------------------------------------- publish_to_store */

/* Rows of four ages (ts two hours, 20 min, 7 min before now and a day
 * after: the +Inf, le 3600, le 900 and le 0.01 buckets while the test takes
 * under 5 min), 5 sockets x 4 stations each, aged as of now. */
#define H_STATIONS 4
#define H_SOCKETS 5
static const int64_t h_ages[] = {7200000, 1200000, 420000, -86400000};
#define H_NAGES ((int)(sizeof h_ages / sizeof h_ages[0]))
#define H_ROWS (H_NAGES * H_STATIONS * H_SOCKETS)

static void push_aged(cw_ring_t *ring, const char *prefix, int64_t now) {
  static const _Atomic int never = 0;
  for (int a = 0; a < H_NAGES; a++)
    for (int st = 0; st < H_STATIONS; st++)
      for (int so = 1; so <= H_SOCKETS; so++) {
        cw_reading_t r = {.ts_ms = now - h_ages[a], .socket = (uint8_t)so, .w = 100,
                          .have = CW_HAVE_W};
        snprintf(r.station, sizeof r.station, "%s%d", prefix, st);
        cw_ring_part_t part = {&r, sizeof r};
        cw_ring_pushv_wait(ring, &part, 1, &never);
      }
}

/* The sum of the rows' ages (as observed: a future ts counts 0) at t. */
static uint64_t aged_sum(int64_t pushed_at, int64_t t, int batches) {
  uint64_t s = 0;
  for (int a = 0; a < H_NAGES; a++) {
    int64_t age = t - (pushed_at - h_ages[a]);
    s += (uint64_t)(age > 0 ? age : 0) * H_STATIONS * H_SOCKETS;
  }
  return s * (uint64_t)batches;
}

/* publish_to_store gets every committed row once, in its bucket, with its
 * age at the commit in the sum: rows committed from the batch the writer
 * encoded (their ts noted as they were encoded), then rows whose batch was
 * spooled (the database connection killed under the writer) and replayed
 * from the spool once the writer reconnected (parsed back). */
CW_TEST(writer_publish_to_store_exact) {
  static cw_fx_t f;
  static char conninfo[sizeof f.cfg.pg_conninfo];
  CW_FX_NEED_PG(&f, "cw_writer_hist_test");
  PGconn *c = cw_fx_conn(&f);
  snprintf(conninfo, sizeof conninfo, "%s", f.cfg.pg_conninfo);
  cw_ring_t *rings[1] = {&f.ring};
  cw_writer_cfg_t wc = {.env = &f.env, .readings = rings, .nrings = 1, .conninfo = conninfo,
                        .spool_sub = "hist"};
  cw_writer_t *w = NULL;
  CHECK_EQ(cw_writer_create(&wc, &w), 0);
  CHECK_EQ(cw_writer_start(w), 0);
  cw_hist_t *h = &f.m.publish_to_store;

  /* 1. stored from the writer's own batch */
  int64_t t0 = cw_now_ms();
  push_aged(&f.ring, "HA", t0);
  CHECK_EQ(cw_writer_sync(w, 20000), 0);
  int64_t t1 = cw_now_ms();
  CHECK_EQ(atomic_load(&f.m.rows_committed), H_ROWS);
  CHECK_EQ(atomic_load(&f.m.batches_spooled), 0);
  CHECK_EQ(atomic_load(&h->count), H_ROWS);
  CHECK_EQ(atomic_load(&h->b[CW_HIST_NB]), H_ROWS / H_NAGES); /* two hours */
  CHECK_EQ(atomic_load(&h->b[CW_HIST_NB - 1]), H_ROWS / H_NAGES); /* 20 min: le 3600 */
  CHECK_EQ(atomic_load(&h->b[CW_HIST_NB - 2]), H_ROWS / H_NAGES); /* 7 min: le 900 */
  CHECK_EQ(atomic_load(&h->b[0]), H_ROWS / H_NAGES); /* a day ahead: 0 */
  uint64_t sum = atomic_load(&h->sum_ms);
  CHECK(sum >= aged_sum(t0, t0, 1) && sum <= aged_sum(t0, t1, 1));

  /* 2. the connection killed: the next batch goes to the spool, then is
   * replayed after the reconnection */
  CHECK_EQ(cw_fx_q1(c, "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND pid <> pg_backend_pid()"),
           1);
  int64_t t2 = cw_now_ms();
  push_aged(&f.ring, "HB", t2);
  CHECK_EQ(cw_writer_sync(w, 20000), 0); /* stored or spooled */
  for (int i = 0; i < 2000 && atomic_load(&f.m.spool_replayed) == 0; i++) cw_sleep_ms(10);
  CHECK_EQ(cw_writer_sync(w, 20000), 0);
  int64_t t3 = cw_now_ms();
  /* 3. and again from the writer's own batch: nothing of the spooled one
   * is counted twice */
  push_aged(&f.ring, "HC", t3);
  CHECK_EQ(cw_writer_sync(w, 20000), 0);
  int64_t t4 = cw_now_ms();
  cw_writer_stop(w);
  CHECK_EQ(atomic_load(&f.m.batches_spooled), 1);
  CHECK_EQ(atomic_load(&f.m.spool_replayed), 1);
  CHECK_EQ(atomic_load(&f.m.rows_committed), 3 * H_ROWS);
  CHECK_EQ(cw_fx_q1(c, "SELECT count(*) FROM readings"), 3 * H_ROWS);
  CHECK_EQ(atomic_load(&h->count), 3 * H_ROWS);
  CHECK_EQ(atomic_load(&h->b[CW_HIST_NB]), 3 * H_ROWS / H_NAGES);
  CHECK_EQ(atomic_load(&h->b[CW_HIST_NB - 1]), 3 * H_ROWS / H_NAGES);
  CHECK_EQ(atomic_load(&h->b[CW_HIST_NB - 2]), 3 * H_ROWS / H_NAGES);
  CHECK_EQ(atomic_load(&h->b[0]), 3 * H_ROWS / H_NAGES);
  uint64_t total = 0;
  for (int i = 0; i <= CW_HIST_NB; i++) total += atomic_load(&h->b[i]);
  CHECK_EQ(total, 3 * H_ROWS);
  uint64_t sum23 = atomic_load(&h->sum_ms) - sum;
  CHECK(sum23 >= aged_sum(t2, t2, 1) + aged_sum(t3, t3, 1) &&
        sum23 <= aged_sum(t2, t3, 1) + aged_sum(t3, t4, 1));
  cw_writer_free(w);
  PQfinish(c);
  cw_fx_free(&f);
}
