/* writer_int.h - internals shared by the files of the writer: writer.c
 * (thread, reading batches, readings spool, lifecycle) and writer_alerts.c
 * (the alert hand-off queue, the alert spool and its pump); both use the
 * database side of db.h. */
#ifndef CW_WRITER_INT_H
#define CW_WRITER_INT_H

#include <pthread.h>

#include "db.h"
#include "spool.h"

/* The bounded FIFO of alert events from the main loop (producer,
 * cw_writer_store_alert) to the writer thread (consumer). Thread-safe. */
typedef struct cw_alertq {
  pthread_mutex_t mu;
  struct cw_alertq_node *head, *tail;
  size_t len, max;
  uint64_t overflow; /* events refused at the bound or lost to ENOMEM on requeue */
} cw_alertq_t;

typedef struct cw_walerts {
  const cw_env_t *env; /* NULL until cw__walerts_open */
  cw_alertq_t q;
  cw_spool_t *spool;   /* spool_dir/alerts */
  uint64_t torn_seen;  /* spool damage already logged */
  int64_t next_log_ms;
  int64_t next_gauge_ms; /* next refresh of the alerts_open gauge (monotonic) */
} cw_walerts_t;

/* Queue and spool (path). 0 or -errno from the spool. */
int cw__walerts_open(cw_walerts_t *a, const cw_env_t *env, const char *path, uint64_t segment);
void cw__walerts_close(cw_walerts_t *a); /* logs events still queued */
/* Any thread: queue a copy. 0, -ENOMEM or -ENOBUFS (full: logged once per 1000). */
int cw__walerts_push(cw_walerts_t *a, const cw_alert_event_t *ev);
int cw__walerts_pending(cw_walerts_t *a); /* events queued in memory */
/* Writer thread: spooled events first (older), then the queue; while the
 * database is unusable the queue moves to the spool. */
void cw__walerts_pump(cw_walerts_t *a, cw_wdb_t *db);
uint64_t cw__walerts_spool_bytes(cw_walerts_t *a);
/* Log once per damaged spot the records a spool skipped (CRC, framing). */
void cw__spool_damage(cw_spool_t *s, uint64_t *seen, const char *what, const char *dir);

#endif
