/* shards.c - per ingest client: its journal and, with [cluster], its watch
 * (ownership, connect, blindness, handover); see shards.h. The client, the
 * pipeline and the writers are reached only through the port main.c
 * wires. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fsutil.h"
#include "shards.h"

/* One ingest client. Atomics: written by the lease thread, paho's thread
 * and the workers; b, caught_ms and sighted are the main loop's. */
typedef struct shard {
  cw_journal_t *journal;               /* opened at its first attach, then kept */
  _Atomic int64_t latest_ms, fresh_ms; /* its workers' m->recv_* (cw_pipeline_cfg_t) */
  _Atomic int owned;                   /* [cluster]: its lease is held */
  _Atomic int64_t connected_ms;        /* wall clock of its client's connect, 0: not connected */
  cw_blind_t b;
  int64_t caught_ms;                   /* caught up (b not blind) since, 0: not */
  int sighted;                         /* what its pipeline was last told */
  int held_once;                       /* the lease thread's: its lease was held before */
  _Atomic int forget_due;              /* lost with its lease, not yet forgotten (set under mu) */
  int drained_ticks;                   /* the main loop's: ticks since with its rings empty */
} shard_t;

struct cw_shards {
  const cw_env_t *env;
  cw_shard_port_t port;
  pthread_mutex_t mu; /* forget_due: the lease thread sets and takes it, the main loop takes it */
  shard_t sh[CW_MAX_SHARDS];
};

int cw_shards_create(const cw_env_t *env, const cw_shard_port_t *port, cw_shards_t **out) {
  cw_shards_t *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->env = env;
  s->port = *port;
  pthread_mutex_init(&s->mu, NULL);
  *out = s;
  return 0;
}

void cw_shards_free(cw_shards_t *s) {
  if (!s) return;
  for (int k = 0; k < CW_MAX_SHARDS; k++) cw_journal_close(s->sh[k].journal);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

_Atomic int64_t *cw_shards_lag_latest(cw_shards_t *s, int k) { return &s->sh[k].latest_ms; }
_Atomic int64_t *cw_shards_lag_fresh(cw_shards_t *s, int k) { return &s->sh[k].fresh_ms; }

/* ------------------------------------------------------------- journals */

typedef struct replay_to {
  cw_shards_t *s;
  int k;
} replay_to_t;

static void replay_one(void *ctx, const cw_journal_entry_t *e) {
  replay_to_t *r = ctx;
  r->s->port.ingest(r->s->port.ctx, r->k, e);
}

/* Client k's journal file: [cluster] journal_dir/shard-K.journal, else
 * [spool] journal, else spool_dir/ingest.journal. */
static void journal_path(const cw_config_t *c, int k, char *path, size_t cap) {
  if (c->shards) snprintf(path, cap, "%s/shard-%d.journal", c->journal_dir, k);
  else if (c->journal[0]) snprintf(path, cap, "%s", c->journal);
  else snprintf(path, cap, "%s/ingest.journal", c->spool_dir);
}

/* Before ingest client k connects: open its journal (once), replay what
 * was not committed through pipeline k, in order and before the broker's
 * backlog, then have the client append to it. A shard taken back by this
 * process replays only what another process appended meanwhile. 0 or
 * -errno (logged). */
static int journal_attach(cw_shards_t *s, int k) {
  const cw_config_t *c = s->env->cfg;
  const cw_shard_port_t *p = &s->port;
  shard_t *sh = &s->sh[k];
  char path[PATH_MAX], dir[PATH_MAX];
  int rc;
  if (!sh->journal) {
    journal_path(c, k, path, sizeof path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    rc = slash && slash != dir ? (*slash = 0, cw_mkdir_p(dir)) : 0;
    /* without [cluster] the spool's lock makes the journal ours alone: a
     * new journal_bytes applies once it holds nothing to replay */
    if (rc == 0)
      rc = c->shards ? cw_journal_open(path, c->journal_bytes, &sh->journal)
                     : cw_journal_open_alone(path, c->journal_bytes, &sh->journal);
    if (rc < 0) {
      cw_log(CW_LOG_ERROR, "journal %s: %s", path, strerror(-rc));
      return rc;
    }
    if (rc == 1)
      cw_log(CW_LOG_ERROR, "journal %s: invalid header: set aside as %s.bad, starting empty", path,
             path);
    p->commit_journal(p->ctx, k, sh->journal);
  }
  cw_journal_replay_stats_t st;
  replay_to_t to = {s, k};
  cw_journal_replay(sh->journal, p->jpos_handed(p->ctx, k), replay_one, &to, &st);
  if (st.entries || st.dropped)
    cw_log(st.dropped ? CW_LOG_WARN : CW_LOG_INFO,
           "journal: %s %d: replayed %llu messages not committed before (%llu bytes); "
           "%llu bytes after a damaged record dropped",
           c->shards ? "shard" : "ingest client", k, (unsigned long long)st.entries,
           (unsigned long long)st.bytes, (unsigned long long)st.dropped);
  p->journal(p->ctx, k, sh->journal);
  return 0;
}

typedef struct replay_job {
  cw_shards_t *s;
  _Atomic int done;
  int rc;
} replay_job_t;

static void *replay_main(void *arg) {
  replay_job_t *r = arg;
  r->rc = journal_attach(r->s, 0);
  atomic_store(&r->done, 1);
  return NULL;
}

int cw_shards_journal_start(cw_shards_t *s) {
  const cw_shard_port_t *p = &s->port;
  replay_job_t r = {.s = s};
  pthread_t t;
  if (pthread_create(&t, NULL, replay_main, &r)) return journal_attach(s, 0);
  while (!atomic_load(&r.done)) {
    p->drain_alerts(p->ctx);
    cw_sleep_ms(2);
  }
  pthread_join(t, NULL);
  p->drain_alerts(p->ctx);
  return r.rc;
}

/* ------------------------------------------------------------- [cluster] lease callbacks */

/* A control message to every worker of shard k's pipeline. */
static void post_ctl(cw_shards_t *s, int k, cw_ctl_type_t type, uint8_t socket, int64_t ts_ms) {
  cw_ctl_t *c = calloc(1, sizeof *c);
  if (!c) return; /* ENOMEM: as a lost command */
  c->type = type;
  c->socket = socket;
  c->ts_ms = ts_ms;
  s->port.post_all(s->port.ctx, k, c);
}

/* What shard k's engines hold is another process's now (an operator's
 * command, which every daemon hears, must not be applied here too). due: 1
 * only while a forget is still due (the lease lost, cw_shards_tick), so
 * that the tick's forget cannot land after a take-back's restore. */
static int forget(cw_shards_t *s, int k, int due) {
  pthread_mutex_lock(&s->mu);
  int post = !due || atomic_load(&s->sh[k].forget_due);
  if (post) post_ctl(s, k, CW_CTL_FORGET, 0, 0);
  atomic_store(&s->sh[k].forget_due, 0);
  pthread_mutex_unlock(&s->mu);
  return post;
}

/* What shard k's engines still hold from an earlier lease is stale: another
 * process watched its stations meanwhile (an alert it closed would stay
 * open here and swallow the next raise). Forgotten before the restore's
 * control messages reach the same queues. First, what this process raised
 * and has not stored yet (its lease lost with the database, which is back
 * now) is stored: the restore reads it back, else its condition, still
 * present, would raise it again. */
#define TAKE_SYNC_MS 10000
void cw_shards_taking(void *ctx, int k) {
  cw_shards_t *s = ctx;
  const cw_shard_port_t *p = &s->port;
  if (!s->sh[k].held_once) return; /* a first take: nothing raised here, nothing held */
  int64_t t0 = cw_mono_ms();
  int rc = p->sync(p->ctx, k, TAKE_SYNC_MS);
  if (rc)
    cw_log(CW_LOG_WARN, "cluster: shard %d: what this process raised for it is not all stored "
           "before its restore (%s); an alert raised here before the lease was lost may be "
           "raised again", k, strerror(-rc));
  else if (cw_mono_ms() - t0 > 100)
    cw_log(CW_LOG_INFO, "cluster: shard %d: what this process held for it stored before its "
           "restore (%lld ms)", k, (long long)(cw_mono_ms() - t0));
  forget(s, k, 0);
}

void cw_shards_acquired(void *ctx, int k) {
  cw_shards_t *s = ctx;
  const cw_shard_port_t *p = &s->port;
  p->set_blind(p->ctx, k, INT64_MAX); /* until its backlog is in (cw_shards_tick) */
  atomic_store(&s->sh[k].connected_ms, 0);
  atomic_store(&s->sh[k].owned, 1);
  s->sh[k].held_once = 1;
  atomic_fetch_add(&s->env->m->lease_events[CW_LEASE_ACQUIRED], 1);
  /* the journal's rest first (while blind, a reading not newer than its
   * socket's stored one is stored without detection); a shard whose journal
   * cannot be opened still runs, as it did before journals existed */
  journal_attach(s, k);
  p->connect(p->ctx, k);
}

/* Stop watching shard k: its client dropped, its engines blind (another
 * process watches its stations now or next). */
static void disown(cw_shards_t *s, int k) {
  const cw_shard_port_t *p = &s->port;
  atomic_store(&s->sh[k].owned, 0);
  p->drop(p->ctx, k);
  atomic_store(&s->sh[k].connected_ms, 0);
  p->set_blind(p->ctx, k, INT64_MAX);
}

/* Lost with its lease: what its rings still hold is processed first, so
 * its engines forget on the main loop's tick once they are drained. */
void cw_shards_lost(void *ctx, int k) {
  cw_shards_t *s = ctx;
  disown(s, k);
  atomic_fetch_add(&s->env->m->lease_events[CW_LEASE_LOST], 1);
  pthread_mutex_lock(&s->mu);
  atomic_store(&s->sh[k].forget_due, 1);
  pthread_mutex_unlock(&s->mu);
}

/* Rebalance, on the lease thread: the client is dropped (the broker keeps
 * the session and queues for the next owner); what it delivered is in
 * shard k's rings: wait until the workers and the writer have taken it
 * all, then until the writers have stored it and the alerts it raised. */
#define RELEASE_DRAIN_MS 10000
int cw_shards_release(void *ctx, int k) {
  cw_shards_t *s = ctx;
  const cw_shard_port_t *p = &s->port;
  int64_t until = cw_mono_ms() + RELEASE_DRAIN_MS;
  disown(s, k);
  int quiet = 0; /* consecutive empty looks, 50 ms apart: no delivery was under way */
  while (quiet < 3 && cw_mono_ms() < until && !cw_env_stopping(s->env)) {
    quiet = p->rings_empty(p->ctx, k) && !p->stalled_ms(p->ctx, k, cw_now_ms()) ? quiet + 1 : 0;
    cw_sleep_ms(50);
  }
  int left = (int)(until - cw_mono_ms());
  if (quiet < 3 || p->sync(p->ctx, k, left > 0 ? left : 1)) {
    atomic_store(&s->sh[k].owned, 1); /* kept: the lease thread reconnects it */
    return -ETIMEDOUT;
  }
  atomic_fetch_add(&s->env->m->lease_events[CW_LEASE_RELEASED], 1);
  forget(s, k, 0); /* everything it delivered is stored */
  return 0;
}

int cw_shards_up(void *ctx, int k) {
  cw_shards_t *s = ctx;
  return s->port.up(s->port.ctx, k);
}

void cw_shards_reconnect(void *ctx, int k) {
  cw_shards_t *s = ctx;
  atomic_store(&s->sh[k].connected_ms, 0);
  s->port.connect(s->port.ctx, k);
}

/* Paho's thread: the lag is measured afresh from here (a session backlog
 * comes first); the main loop's tick decides when the shard is sighted. */
void cw_shards_connected(void *ctx, int k) {
  cw_shards_t *s = ctx;
  int64_t now = cw_now_ms();
  atomic_store(&s->sh[k].latest_ms, 0);
  atomic_store(&s->sh[k].fresh_ms, 0);
  atomic_store(&s->sh[k].connected_ms, now);
  cw_log(CW_LOG_INFO, "cluster: shard %d: connected at %lld; blind until its backlog is in "
         "(at most %d s)", k, (long long)now, s->env->cfg->blind_s);
}

/* ------------------------------------------------------------- [cluster] blindness */

void cw_shards_blind_init(cw_shards_t *s, int64_t now_ms, int64_t stall_ms) {
  const cw_config_t *c = s->env->cfg;
  for (int k = 0; k < c->shards; k++)
    cw_blind_init(&s->sh[k].b, (int64_t)c->ingest_lag_s * 1000, (int64_t)c->ingest_alert_s * 1000,
                  stall_ms, now_ms);
}

/* One shard's engines told blind (1) or sighted (0): the engine's own
 * state (cw_engine_set_blind: offline timers restart when sighted) and the
 * workers' (no sweep, late redeliveries stored without detection). */
static void tell(cw_shards_t *s, int k, int blind, int64_t now) {
  const cw_shard_port_t *p = &s->port;
  post_ctl(s, k, CW_CTL_BLIND, (uint8_t)blind, now);
  p->set_blind(p->ctx, k, blind ? INT64_MAX : 0);
  s->sh[k].sighted = !blind;
}

/* Every tick: each owned shard is blind until its client is connected and
 * caught up (lib/blind.h over its own lag: a reading received within
 * ingest_lag_s of its ts among the last ones) for SHARD_CAUGHT_MS, or until
 * blind_s after the connect (the bound: a shard that never catches up is
 * judged all the same, and the ingest alert says it lags). A shard not
 * owned is blind. */
#define SHARD_CAUGHT_MS 2000

/* A shard lost with its lease forgets once its rings were found empty on 3
 * ticks in a row (what they held processed: a reading left would meet an
 * engine without its alerts and raise them anew). Rings that never drain
 * (a writer stuck on a dead database) keep it due: the take-back forgets. */
#define FORGET_DRAINED_TICKS 3
static void forget_when_drained(cw_shards_t *s, int k, int64_t now) {
  const cw_shard_port_t *p = &s->port;
  shard_t *w = &s->sh[k];
  if (!atomic_load(&w->forget_due)) { /* forget() decides again under mu */
    w->drained_ticks = 0;
    return;
  }
  int drained = p->rings_empty(p->ctx, k) && !p->stalled_ms(p->ctx, k, now);
  w->drained_ticks = drained ? w->drained_ticks + 1 : 0;
  if (w->drained_ticks >= FORGET_DRAINED_TICKS && forget(s, k, 1))
    cw_log(CW_LOG_INFO, "cluster: shard %d: its engines forgot what they held (its lease went, rings "
           "drained)", k);
}

void cw_shards_held(void *ctx, uint64_t *owned, uint64_t *sighted) {
  cw_shards_t *s = ctx;
  *owned = *sighted = 0;
  for (int k = 0; k < s->env->cfg->shards; k++) {
    if (!atomic_load(&s->sh[k].owned)) continue;
    *owned |= 1ull << k;
    if (s->sh[k].sighted) *sighted |= 1ull << k;
  }
}

void cw_shards_tick(cw_shards_t *s, int64_t now, cw_blind_obs_t *o) {
  const cw_config_t *c = s->env->cfg;
  const cw_shard_port_t *p = &s->port;
  int lagging = 0;
  for (int k = 0; k < c->shards; k++) {
    shard_t *w = &s->sh[k];
    if (!atomic_load(&w->owned)) {
      if (w->sighted) tell(s, k, 1, now);
      forget_when_drained(s, k, now);
      continue;
    }
    int64_t conn = atomic_load(&w->connected_ms);
    cw_blind_obs_t so = {.connected = conn > 0 && p->up(p->ctx, k),
                         .latest_recv_ms = atomic_load(&w->latest_ms),
                         .fresh_recv_ms = atomic_load(&w->fresh_ms),
                         .stalled_ms = p->stalled_ms(p->ctx, k, now)};
    cw_blind_update(&w->b, &so, now);
    if (w->b.blind) w->caught_ms = 0;
    else if (!w->caught_ms) w->caught_ms = now;
    o->connected = o->connected && so.connected;
    if (so.stalled_ms > o->stalled_ms) o->stalled_ms = so.stalled_ms;
    /* caught up needs evidence: a reading since the connect (a broker may
     * start the backlog seconds late: silence is not "caught up") */
    int caught = w->caught_ms && now - w->caught_ms >= SHARD_CAUGHT_MS && so.latest_recv_ms > 0;
    int bound = c->blind_s > 0 && conn > 0 && now - conn >= (int64_t)c->blind_s * 1000;
    int sighted = so.connected && (caught || bound);
    /* the daemon lags while a connected shard that has received since its
     * connect is not yet sighted, or still lags past its bound: one blind
     * spell from its backlog's first reading to its end, not one per pause
     * in the delivery. A shard that has heard nothing yet keeps its own
     * engines blind but is no evidence of lag (silence is not lag, as
     * without [cluster]): stations reporting every 30 s would otherwise
     * raise the daemon's ingest alert at every start and takeover. */
    if (so.connected && so.latest_recv_ms > 0 &&
        (!sighted || (w->b.blind && (w->b.why & CW_BLIND_LAGGING))))
      lagging = 1;
    if (sighted == w->sighted) continue;
    tell(s, k, !sighted, now);
    if (!atomic_load(&w->owned)) { /* lost meanwhile (lease thread): blind again */
      tell(s, k, 1, now);
    } else if (sighted) {
      char why[64];
      cw_log(CW_LOG_INFO, "cluster: shard %d: sighted at %lld, %.1f s after its connect (%s)", k,
             (long long)now, (double)(now - conn) / 1000.0,
             caught ? "backlog in: lag below ingest_lag_s" : cw_blind_why_name(w->b.why, why, sizeof why));
    } else {
      cw_log(CW_LOG_INFO, "cluster: shard %d: blind at %lld", k, (long long)now);
    }
  }
  /* lib/blind.h's lagging test, from the shards' own */
  o->latest_recv_ms = lagging ? now : 0;
  o->fresh_recv_ms = 0;
}
