/* fixture.h - set-up shared by the unit tests of daemon/ parts: the
 * environment every part gets (configuration, metrics, reject sink, alert
 * ids), a reading ring, a control port that records what is posted, and a
 * fresh PostgreSQL database with a spool directory (tests/pgtmp.c). */
#ifndef CW_FIXTURE_H
#define CW_FIXTURE_H

#include <libpq-fe.h>
#include <pthread.h>

#include "ctl.h"
#include "env.h"
#include "idgen.h"
#include "ring.h"
#include "writer.h"

typedef struct cw_fx {
  cw_ring_t ring; /* a reading ring (first: cache-line aligned) */
  cw_config_t cfg;
  cw_metrics_t m;
  cw_env_t env;
  cw_idgen_t ids;
  _Atomic int stopping;
  /* what the env's reject sink saw */
  _Atomic int rejects;
  char reject_topic[128];
  /* what the port was given, in order */
  pthread_mutex_t mu;
  cw_ctl_t *posted, *posted_tail;
  int nposted;
  int last_target;
  /* cw_fx_pg */
  char spool[128];
  char conninfo[400];
} cw_fx_t;

/* Defaults, no alert log, a one-ring setup; ids from the clock. 0 or -1. */
int cw_fx_init(cw_fx_t *f);
/* cw_fx_init plus a fresh database dbname and a temporary spool directory.
 * 0, or -1 without a PostgreSQL server (the caller skips). */
int cw_fx_pg(cw_fx_t *f, const char *dbname);
void cw_fx_free(cw_fx_t *f);
/* A port recording every post (any thread). route: FNV-1a modulo nworkers. */
cw_ctl_port_t cw_fx_port(cw_fx_t *f);
int cw_fx_nposted(cw_fx_t *f);
/* A writer over f->ring with f's port and ids (not started). */
int cw_fx_writer(cw_fx_t *f, cw_writer_t **w);

PGconn *cw_fx_conn(const cw_fx_t *f);
void cw_fx_exec(PGconn *c, const char *sql);
long long cw_fx_q1(PGconn *c, const char *sql); /* first column of the first row, or -1 */

#define CW_FX_NEED_PG(f, db)                             \
  do {                                                   \
    if (cw_fx_pg(f, db)) {                               \
      fprintf(stderr, "    (skipped: no PostgreSQL)\n"); \
      cw_fx_free(f);                                     \
      return;                                            \
    }                                                    \
  } while (0)

#endif
