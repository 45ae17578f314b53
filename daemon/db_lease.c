/* db_lease.c - the shard leases (lease.h): one thread, one libpq control
 * connection, session advisory locks. The connection never goes through a
 * transaction-mode pooler (session locks need a session); TCP keepalives on
 * it bound how long a dead owner's locks outlive it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "lease.h"
#include "partition.h"

#define SHARD_KEY "hashtext('chargewatch.shard')"
#define MEMBER_KEY "hashtext('chargewatch.member')"
#define MEMBER_SLOTS (1 << CW_IDGEN_SLOT_BITS)
#define SETTLE_PERIODS 4

struct cw_lease {
  cw_lease_cfg_t cfg;
  const cw_config_t *c;
  pthread_t thread;
  int started;
  _Atomic int quiet; /* shutdown: no more takes or reconnects */
  _Atomic int stop;
  PGconn *conn;
  int64_t up_since_ms; /* monotonic: when the connection came up */
  uint64_t owned;      /* bit k: shard k's lock is held */
  int slot;
  int keep_shard;      /* for keep() during one restore */
};

static int query_int(PGconn *c, const char *sql, long long *out) {
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok) *out = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return ok ? 0 : -EIO;
}

static int nshards_owned(const cw_lease_t *l) { return __builtin_popcountll(l->owned); }

/* Drop every owned shard's client: the locks are gone or about to go. */
static void lose_all(cw_lease_t *l, const char *why) {
  for (int k = 0; k < l->c->shards; k++) {
    if (!(l->owned >> k & 1)) continue;
    l->cfg.lost(l->cfg.ctx, k);
    cw_log(CW_LOG_WARN, "cluster: shard %d: lease lost at %lld (%s); client dropped", k,
           (long long)cw_now_ms(), why);
  }
  l->owned = 0;
  if (l->conn) PQfinish(l->conn);
  l->conn = NULL;
}

static int connect_control(cw_lease_t *l) {
  char timeout[16], keep_s[16];
  snprintf(timeout, sizeof timeout, "%d", l->c->lease_check_ms / 1000 + 2);
  snprintf(keep_s, sizeof keep_s, "%d", l->c->lease_check_ms / 1000 + 1);
  /* later keywords override what the conninfo (expanded from dbname) says */
  const char *k[] = {"dbname", "application_name", "connect_timeout", "keepalives",
                     "keepalives_idle", "keepalives_interval", "keepalives_count", NULL};
  const char *v[] = {l->c->pg_conninfo, "chargewatchd-lease", timeout, "1", keep_s, "1", "3", NULL};
  PGconn *c = PQconnectdbParams(k, v, 1);
  char sql[256];
  long long slot = -1;
  if (PQstatus(c) != CONNECTION_OK) {
    cw_log(CW_LOG_WARN, "cluster: control connection: %s", PQerrorMessage(c));
    PQfinish(c);
    return -EIO;
  }
  /* bounded, but generous: a slow probe on a loaded server is not a lost
   * lease (the lock lives as long as the session); a dead session is found
   * by the keepalives or the connection error */
  snprintf(sql, sizeof sql, "SET statement_timeout = %d", 4 * l->c->lease_check_ms + 2000);
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  /* the member slot: unique among live processes, part of every alert id */
  snprintf(sql, sizeof sql,
           "SELECT s FROM generate_series(0, %d) s WHERE pg_try_advisory_lock(" MEMBER_KEY
           ", s) LIMIT 1",
           MEMBER_SLOTS - 1);
  if (!ok || query_int(c, sql, &slot) || slot < 0) {
    cw_log(CW_LOG_WARN, "cluster: no member slot: %s", PQerrorMessage(c));
    PQfinish(c);
    return -EIO;
  }
  l->conn = c;
  l->slot = (int)slot;
  l->up_since_ms = cw_mono_ms();
  cw_idgen_set_slot(l->cfg.ids, slot, cw_now_ms());
  cw_log(CW_LOG_INFO, "cluster: control connection up, member slot %lld", slot);
  return 0;
}

/* Live members: processes holding a member lock (their control connection is up). */
static int members(cw_lease_t *l) {
  long long n = 0;
  if (query_int(l->conn,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 2 AND classid = (" MEMBER_KEY "::bigint & 4294967295)::oid",
                &n))
    return -EIO;
  return n > 0 ? (int)n : 1;
}

static int keep(void *ctx, const char *station) {
  const cw_lease_t *l = ctx;
  int p = cw_partition(l->c->partition_hash, station, strlen(station), l->c->partitions);
  return cw_partition_shard(p, l->c->shards) == l->keep_shard;
}

/* Try to take shard k. 1 taken, 0 someone else holds it, -EIO. */
static int take(cw_lease_t *l, int k) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(" SHARD_KEY ", %d)", k);
  PGresult *r = PQexec(l->conn, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    PQclear(r);
    return -EIO;
  }
  int got = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (!got) return 0;
  l->owned |= 1ull << k;
  /* restore before the first message of the backlog: a condition still
   * present continues its open alert instead of raising a new one */
  l->keep_shard = k;
  int n = cw__db_restore_where(l->conn, &l->cfg.port, keep, l);
  if (n < 0) {
    cw_log(CW_LOG_WARN, "cluster: shard %d: restore failed; lease given back", k);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(" SHARD_KEY ", %d)", k);
    PQclear(PQexec(l->conn, sql));
    l->owned &= ~(1ull << k);
    return -EIO;
  }
  cw_log(CW_LOG_INFO, "cluster: shard %d: lease acquired at %lld (slot %d, %d socket states and "
         "alerts restored)", k, (long long)cw_now_ms(), l->slot, n);
  l->cfg.acquired(l->cfg.ctx, k);
  return 1;
}

static void check(cw_lease_t *l) {
  const cw_config_t *c = l->c;
  if (!l->conn && connect_control(l)) return;
  int nm = members(l);
  if (nm < 0 || PQstatus(l->conn) != CONNECTION_OK) {
    lose_all(l, PQerrorMessage(l->conn));
    return;
  }
  if (atomic_load(&l->quiet)) return;
  /* lease confirmed just now: owned shards whose client is down reconnect */
  for (int k = 0; k < c->shards; k++)
    if ((l->owned >> k & 1) && !l->cfg.up(l->cfg.ctx, k)) {
      cw_log(CW_LOG_INFO, "cluster: shard %d: client down; reconnecting (lease held)", k);
      l->cfg.reconnect(l->cfg.ctx, k);
    }
  /* a few periods of settling after connecting, so that peers started at
   * about the same time are counted before the shards are shared out (a
   * takeover is not delayed: the survivors are long connected) */
  if (cw_mono_ms() - l->up_since_ms < SETTLE_PERIODS * c->lease_check_ms) return;
  int target = (c->shards + nm - 1) / nm;
  int max = c->max_shards ? c->max_shards : c->shards;
  if (target > max) target = max;
  for (int i = 0; i < c->shards && nshards_owned(l) < target; i++) {
    int k = (l->slot + i) % c->shards; /* members start at different shards */
    if ((l->owned >> k & 1) || (c->own_mask && !(c->own_mask >> k & 1))) continue;
    if (take(l, k) < 0) {
      lose_all(l, PQerrorMessage(l->conn));
      return;
    }
  }
}

static void *lease_main(void *arg) {
  cw_lease_t *l = arg;
  while (!atomic_load(&l->stop)) {
    int64_t next = cw_mono_ms() + l->c->lease_check_ms;
    check(l);
    while (!atomic_load(&l->stop) && cw_mono_ms() < next) cw_sleep_ms(20);
  }
  return NULL;
}

int cw_lease_start(const cw_lease_cfg_t *cfg, cw_lease_t **out) {
  cw_lease_t *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  l->cfg = *cfg;
  l->c = cfg->env->cfg;
  int rc = pthread_create(&l->thread, NULL, lease_main, l);
  if (rc) {
    free(l);
    return -rc;
  }
  l->started = 1;
  *out = l;
  return 0;
}

void cw_lease_quiesce(cw_lease_t *l) {
  if (l) atomic_store(&l->quiet, 1);
}

void cw_lease_free(cw_lease_t *l) {
  if (!l) return;
  atomic_store(&l->stop, 1);
  if (l->started) pthread_join(l->thread, NULL);
  if (l->conn) PQfinish(l->conn); /* every lock of the session goes with it */
  if (l->owned) cw_log(CW_LOG_INFO, "cluster: leases released");
  free(l);
}
