/* fixture.c - see fixture.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fixture.h"
#include "hash.h"
#include "test.h"

#define FX_NWORKERS 4 /* what the recording port pretends to route over */

static void on_reject(void *ctx, cw_reject_t why, int index, const char *detail, const char *topic,
                      size_t topic_len, const void *payload, size_t len) {
  cw_fx_t *f = ctx;
  (void)why, (void)index, (void)detail, (void)payload, (void)len;
  pthread_mutex_lock(&f->mu);
  snprintf(f->reject_topic, sizeof f->reject_topic, "%.*s", (int)topic_len, topic ? topic : "");
  pthread_mutex_unlock(&f->mu);
  atomic_fetch_add(&f->rejects, 1);
}

int cw_fx_init(cw_fx_t *f) {
  memset(f, 0, sizeof *f);
  cw_config_defaults(&f->cfg);
  f->cfg.alert_log[0] = 0;
  f->env = (cw_env_t){.cfg = &f->cfg, .m = &f->m, .stopping = &f->stopping, .reject = on_reject,
                      .reject_ctx = f};
  cw_idgen_init(&f->ids, cw_now_us());
  pthread_mutex_init(&f->mu, NULL);
  f->last_target = -100;
  return cw_ring_init(&f->ring, 1 << 20) ? -1 : 0;
}

void cw_fx_exec(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fprintf(stderr, "    %s: %s", sql, PQerrorMessage(c));
  PQclear(r);
}

long long cw_fx_q1(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  long long v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  else if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fprintf(stderr, "    %s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  return v;
}

int cw_fx_pg(cw_fx_t *f, const char *dbname) {
  char sql[160];
  if (cw_fx_init(f)) return -1;
  const char *base = cw_test_pg();
  if (!base) return -1;
  PGconn *c = PQconnectdb(base);
  if (PQstatus(c) != CONNECTION_OK) {
    PQfinish(c);
    return -1;
  }
  cw_fx_exec(c, "SET client_min_messages = warning");
  snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
  cw_fx_exec(c, sql);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
  cw_fx_exec(c, sql);
  PQfinish(c);
  if ((size_t)snprintf(f->conninfo, sizeof f->conninfo, "%s dbname=%s", base, dbname) >=
      sizeof f->conninfo)
    return -1;
  snprintf(f->spool, sizeof f->spool, "/tmp/cw_fx_spool_XXXXXX");
  if (!mkdtemp(f->spool)) return -1;
  snprintf(f->cfg.pg_conninfo, sizeof f->cfg.pg_conninfo, "%s", f->conninfo);
  snprintf(f->cfg.spool_dir, sizeof f->cfg.spool_dir, "%s", f->spool);
  return 0;
}

void cw_fx_free(cw_fx_t *f) {
  cw_ctl_t *c = f->posted;
  while (c) {
    cw_ctl_t *n = c->next;
    free(c);
    c = n;
  }
  f->posted = f->posted_tail = NULL;
  if (f->spool[0]) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->spool);
    if (system(cmd) != 0) fprintf(stderr, "    could not remove %s\n", f->spool);
    f->spool[0] = 0;
  }
  cw_ring_destroy(&f->ring);
  pthread_mutex_destroy(&f->mu);
}

static void fx_post(void *ctx, int worker, cw_ctl_t *c) {
  cw_fx_t *f = ctx;
  c->next = NULL;
  pthread_mutex_lock(&f->mu);
  if (f->posted_tail) f->posted_tail->next = c;
  else f->posted = c;
  f->posted_tail = c;
  f->nposted++;
  f->last_target = worker;
  pthread_mutex_unlock(&f->mu);
}

static int fx_route(void *ctx, const char *station, size_t len) {
  (void)ctx;
  return (int)(cw_fnv1a32(station, len) % FX_NWORKERS);
}

cw_ctl_port_t cw_fx_port(cw_fx_t *f) { return (cw_ctl_port_t){f, fx_post, fx_route}; }

int cw_fx_nposted(cw_fx_t *f) {
  pthread_mutex_lock(&f->mu);
  int n = f->nposted;
  pthread_mutex_unlock(&f->mu);
  return n;
}

int cw_fx_writer(cw_fx_t *f, cw_writer_t **w) {
  cw_ring_t *rings[1] = {&f->ring};
  cw_writer_cfg_t wc = {.env = &f->env, .readings = rings, .nrings = 1, .port = cw_fx_port(f),
                        .ids = &f->ids};
  return cw_writer_create(&wc, w);
}

PGconn *cw_fx_conn(const cw_fx_t *f) { return PQconnectdb(f->conninfo); }
