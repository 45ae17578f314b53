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
/* What a member may own, shown to the others as shared advisory locks on
 * its control session: (MAY_KEY, k) for each shard its own list allows,
 * (CAP_KEY, n) for its max_shards (the shard count when unlimited). */
#define MAY_KEY "hashtext('chargewatch.may')"
#define CAP_KEY "hashtext('chargewatch.cap')"
#define MEMBER_SLOTS (1 << CW_IDGEN_SLOT_BITS)
#define SETTLE_PERIODS 4
#define RELEASE_PAUSE_PERIODS 4 /* after giving a shard away, let the taker take it */
#define AFFINITY_PERIODS 2      /* after a reconnect: its own shards back first, others then */
#define KEY_OID(k) "(" k "::bigint & 4294967295)::oid"

/* One live member as the others see it (pg_locks). */
typedef struct member {
  int pid;
  int owned;       /* shards it holds */
  int cap;         /* max shards it may hold */
  uint64_t may;    /* shards its own list allows */
  uint64_t held;   /* which shards it holds */
} member_t;

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
  uint64_t held_before; /* what it held when its locks went with the control session */
  int slot;
  int keep_shard;      /* for keep() during one restore */
  int mypid;           /* the control session's backend pid */
  int64_t no_release_until_ms; /* monotonic */
  member_t mem[MEMBER_SLOTS > 256 ? 256 : MEMBER_SLOTS];
  int nmem;
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
  if (l->owned) l->held_before = l->owned;
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
  /* what this member may own, for the others' fair-share decisions */
  uint64_t may = 0;
  int cap = l->c->max_shards && l->c->max_shards < l->c->shards ? l->c->max_shards : l->c->shards;
  long long pid = 0;
  for (int k = 0; k < l->c->shards; k++)
    if (!l->c->own_mask || (l->c->own_mask >> k & 1)) may |= 1ull << k;
  for (int k = 0; ok && k < l->c->shards; k++) {
    if (!(may >> k & 1)) continue;
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock_shared(" MAY_KEY ", %d)", k);
    ok = cw__wdb_exec(c, sql) == 0;
  }
  snprintf(sql, sizeof sql, "SELECT pg_advisory_lock_shared(" CAP_KEY ", %d)", cap);
  if (!ok || cw__wdb_exec(c, sql) || query_int(c, "SELECT pg_backend_pid()", &pid)) {
    cw_log(CW_LOG_WARN, "cluster: announcing the member: %s", PQerrorMessage(c));
    PQfinish(c);
    return -EIO;
  }
  l->mypid = (int)pid;
  l->conn = c;
  l->slot = (int)slot;
  l->up_since_ms = cw_mono_ms();
  cw_idgen_set_slot(l->cfg.ids, slot, cw_now_ms());
  cw_log(CW_LOG_INFO, "cluster: control connection up, member slot %lld", slot);
  return 0;
}

/* Live members: processes holding a member lock (their control connection
 * is up), each with the shards it holds and may hold. This query is also
 * the probe of the lease. The number of members, or -EIO. */
static int members(cw_lease_t *l) {
  PGresult *r = PQexec(l->conn,
      "SELECT pid, classid = " KEY_OID(MEMBER_KEY) ", classid = " KEY_OID(SHARD_KEY) ","
      " classid = " KEY_OID(MAY_KEY) ", objid::bigint FROM pg_locks"
      " WHERE locktype = 'advisory' AND granted AND objsubid = 2"
      " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
      " AND classid IN (" KEY_OID(MEMBER_KEY) ", " KEY_OID(SHARD_KEY) ", " KEY_OID(MAY_KEY) ", "
      KEY_OID(CAP_KEY) ") ORDER BY pid");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return -EIO;
  }
  int n = 0;
  member_t all[sizeof l->mem / sizeof l->mem[0]];
  int ismember[sizeof l->mem / sizeof l->mem[0]];
  for (int i = 0; i < PQntuples(r); i++) {
    int pid = atoi(PQgetvalue(r, i, 0)), j;
    long long obj = strtoll(PQgetvalue(r, i, 4), NULL, 10);
    for (j = 0; j < n && all[j].pid != pid; j++) {
    }
    if (j == n) {
      if (n == (int)(sizeof all / sizeof all[0])) continue;
      all[n] = (member_t){.pid = pid, .cap = l->c->shards};
      ismember[n++] = 0;
    }
    member_t *m = &all[j];
    if (PQgetvalue(r, i, 1)[0] == 't') ismember[j] = 1;
    else if (PQgetvalue(r, i, 2)[0] == 't' && obj >= 0 && obj < l->c->shards) m->held |= 1ull << obj;
    else if (PQgetvalue(r, i, 3)[0] == 't' && obj >= 0 && obj < l->c->shards) m->may |= 1ull << obj;
    else if (PQgetvalue(r, i, 1)[0] == 'f' && PQgetvalue(r, i, 2)[0] == 'f' &&
             PQgetvalue(r, i, 3)[0] == 'f')
      m->cap = (int)obj;
  }
  PQclear(r);
  l->nmem = 0;
  for (int j = 0; j < n; j++)
    if (ismember[j]) {
      all[j].owned = __builtin_popcountll(all[j].held);
      l->mem[l->nmem++] = all[j];
    }
  return l->nmem > 0 ? l->nmem : 1;
}

/* A member's fair share: ceil(shards / members), within what it may own. */
static int share(const cw_lease_t *l, const member_t *m) {
  int t = (l->c->shards + l->nmem - 1) / (l->nmem > 0 ? l->nmem : 1);
  int may = __builtin_popcountll(m->may);
  if (t > m->cap) t = m->cap;
  return t < may ? t : may;
}

/* Is there a member other than us below its share that may own shard k? */
static int taker_for(const cw_lease_t *l, int k) {
  for (int j = 0; j < l->nmem; j++) {
    const member_t *m = &l->mem[j];
    if (m->pid != l->mypid && (m->may >> k & 1) && m->owned < share(l, m)) return 1;
  }
  return 0;
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
  if (l->cfg.taking) l->cfg.taking(l->cfg.ctx, k); /* before the restore's control messages */
  /* restore before the first message of the backlog: a condition still
   * present continues its open alert instead of raising a new one */
  l->keep_shard = k;
  PGconn *ts = l->conn; /* sockets.last_ts lives where the shard's readings go */
  if (l->c->shard_conninfo[k][0]) {
    const char *kk[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vv[] = {l->c->shard_conninfo[k], "chargewatchd-lease", "5", NULL};
    ts = PQconnectdbParams(kk, vv, 1);
    if (PQstatus(ts) != CONNECTION_OK)
      cw_log(CW_LOG_WARN, "cluster: shard %d: its database: %s", k, PQerrorMessage(ts));
  }
  int n = PQstatus(ts) == CONNECTION_OK ? cw__db_restore_where(l->conn, ts, &l->cfg.port, keep, l)
                                         : -EIO;
  if (ts != l->conn) PQfinish(ts);
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

/* Give shard k away cleanly: the owner's side (client paused, rings
 * drained, writer flushed) first, then the lock. When the drain does not
 * finish, keep the shard (its client reconnects at the next check). */
static void release(cw_lease_t *l, int k) {
  int64_t t0 = cw_mono_ms();
  cw_log(CW_LOG_INFO, "cluster: shard %d: over the fair share (%d members); handing it over", k,
         l->nmem);
  if (l->cfg.release(l->cfg.ctx, k)) {
    cw_log(CW_LOG_WARN, "cluster: shard %d: not drained; kept", k);
    return;
  }
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(" SHARD_KEY ", %d)", k);
  long long ok = 0;
  if (query_int(l->conn, sql, &ok)) {
    lose_all(l, PQerrorMessage(l->conn));
    return;
  }
  l->owned &= ~(1ull << k);
  l->held_before &= ~(1ull << k);
  cw_log(CW_LOG_INFO, "cluster: shard %d: lease released at %lld (rebalance; drained in %lld ms)", k,
         (long long)cw_now_ms(), (long long)(cw_mono_ms() - t0));
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
  member_t me = {.pid = l->mypid, .cap = c->max_shards && c->max_shards < c->shards ? c->max_shards
                                                                                    : c->shards};
  uint64_t held = 0; /* by anyone */
  for (int j = 0; j < l->nmem; j++) {
    held |= l->mem[j].held;
    if (l->mem[j].pid == l->mypid) me.may = l->mem[j].may;
  }
  (void)nm;
  int target = share(l, &me);
  /* up to the share; past it only a shard no member below its share may
   * take (own lists, max_shards), so that no shard stays unowned. After
   * its locks went with the control session (the database restarted,
   * say), a member takes back what it held first, and any other free
   * shard only AFFINITY_PERIODS later: every member lost its locks at
   * once, and each taking its own back keeps the stations where their
   * engine state and their unstored alerts are (a shard moving then could
   * raise again an alert its old owner had not stored yet). A takeover
   * from a member that died is not delayed: the survivors are long
   * connected. */
  int others = !l->held_before ||
               cw_mono_ms() - l->up_since_ms >= (SETTLE_PERIODS + AFFINITY_PERIODS) * c->lease_check_ms;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < c->shards && nshards_owned(l) < me.cap; i++) {
      int k = (l->slot + i) % c->shards; /* members start at different shards */
      int mine = l->held_before >> k & 1;
      if (pass == 0 ? !mine : mine || !others) continue;
      if ((l->owned >> k & 1) || (held >> k & 1) || !(me.may >> k & 1)) continue;
      if (nshards_owned(l) >= target && taker_for(l, k)) continue;
      if (take(l, k) < 0) {
        lose_all(l, PQerrorMessage(l->conn));
        return;
      }
    }
  }
  if (others) l->held_before = 0;
  /* rebalance: above the share while a member that may own one of ours is
   * below its own, give one shard away per pause (a member that joined) */
  if (nshards_owned(l) <= target || cw_mono_ms() < l->no_release_until_ms || !l->cfg.release) return;
  for (int i = c->shards - 1; i >= 0; i--) {
    int k = (l->slot + i) % c->shards; /* the last taken first */
    if (!(l->owned >> k & 1) || !taker_for(l, k)) continue;
    release(l, k);
    l->no_release_until_ms = cw_mono_ms() + RELEASE_PAUSE_PERIODS * c->lease_check_ms;
    break;
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
  pthread_setname_np(l->thread, "cw-lease");
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
