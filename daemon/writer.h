/* writer.h - the PostgreSQL side: a thread that owns a libpq connection,
 * turns reading rings into binary COPY batches, stores alert events, keeps
 * daily partitions ahead, and while the database is unreachable spools
 * finished batches to disk and replays them in order when it returns. It
 * is given the consumer ends of the reading rings and a control port (for
 * station and socket policies and restored state); NOTIFY payloads on
 * cw_alert_cmd go to the command callback. It knows no other part.
 * A process runs one main writer ([postgres] conninfo: readings, alerts,
 * policies, NOTIFY) and, with [cluster] shard_conninfo.K, one readings
 * writer per other database, given the reading rings of the shards mapped
 * to it (docs/SCALING.md). */
#ifndef CW_WRITER_H
#define CW_WRITER_H

#include "ctl.h"
#include "env.h"
#include "idgen.h"
#include "journal.h"
#include "ring.h"

typedef struct cw_writer cw_writer_t;

typedef struct cw_writer_cfg {
  const cw_env_t *env;
  cw_ring_t **readings; /* consumer ends of the reading rings (array copied) */
  int nrings;
  cw_ctl_port_t port;   /* where policies and restored state go */
  cw_idgen_t *ids;      /* raised past the largest stored alert id */
  /* Writer thread: an operator command from NOTIFY cw_alert_cmd
   * (NUL-terminated JSON). May be NULL. */
  void (*command)(void *ctx, const char *payload, size_t len);
  void *command_ctx;
  /* A readings writer ([cluster] shard_conninfo.K): conninfo names its
   * database, spool_sub its spool directory under [spool] dir. It stores
   * readings and sockets.last_ts only: no alerts (cw_writer_store_alert
   * must not be called), no policies or restore (port, ids and command
   * unused), no NOTIFY; it registers stations in its own database. NULL:
   * the main writer. */
  const char *conninfo;  /* kept by pointer */
  const char *spool_sub;
} cw_writer_cfg_t;

/* Connects (waiting up to 10 s), applies migrations, keeps partitions ahead,
 * posts station/socket policies, last ts and open alerts through the port,
 * raises the alert ids. Call before the workers start. A database that is
 * down or stays down is not an error: 0, and the writer spools until it
 * returns (env->m->db_connected says which). -errno only for what stops the
 * daemon: no memory, the spool directory, a schema the database refuses
 * (-EPROTO). */
int cw_writer_create(const cw_writer_cfg_t *cfg, cw_writer_t **out);
int cw_writer_start(cw_writer_t *w);
/* Main loop -> writer: store an alert event (alerts + alert_events rows).
 * Never blocks: a bounded in-memory queue the writer moves to the database
 * or to the alert spool. 0, -ENOMEM or -ENOBUFS (queue full: writer stuck). */
int cw_writer_store_alert(cw_writer_t *w, const cw_alert_event_t *ev);
/* Any thread: an operator command on alert id came over MQTT; the stored
 * event it causes records that origin (db.h, cw__wdb_note_mqtt_command). */
void cw_writer_note_mqtt_command(cw_writer_t *w, int64_t id, cw_event_t event);
/* Any thread: 1 and the server's message while the database refuses the
 * daemon's connections (authentication, role, pg_hba), else 0. */
int cw_writer_db_refusal(cw_writer_t *w, char *why, size_t cap);
/* Any thread, once per ingest client k (0 <= k < CW_MAX_SHARDS): journal j
 * holds client k's messages, and processed(ctx) says up to which jpos they
 * have reached the reading rings (cw_pipeline_jpos_processed). Each time the
 * writer has emptied every reading ring and stored or spooled what it took,
 * it commits into j what processed returned before it began emptying them.
 * j stays the caller's; it must outlive the writer's thread. */
void cw_writer_journal(cw_writer_t *w, int k, cw_journal_t *j, int64_t (*processed)(void *ctx),
                       void *ctx);
/* SIGHUP: reload station/socket policies from the database and post them. */
void cw_writer_reload(cw_writer_t *w);
/* Any thread: wait until every row the writer's rings held at the call is
 * committed or spooled and sockets.last_ts is written (the main writer
 * also stores the alerts queued so far). Used before giving a shard away.
 * Call only while the writer runs (after cw_writer_start). 0, -ETIMEDOUT
 * after timeout_ms (database slow, spool full), -ECANCELED once stopping. */
int cw_writer_sync(cw_writer_t *w, int timeout_ms);
/* Drain the reading rings (producers already stopped), flush or spool, stop. */
void cw_writer_stop(cw_writer_t *w);
void cw_writer_free(cw_writer_t *w);

#endif
