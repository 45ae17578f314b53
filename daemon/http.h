/* http.h - the operator's HTTP endpoint on the main loop: GET /metrics
 * (Prometheus text format) and GET /healthz. Reads the metrics of env and
 * the ring occupancy through a callback main.c wires. */
#ifndef CW_HTTP_H
#define CW_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "env.h"

typedef struct cw_http_rings {
  size_t ingest_used, readings_used, alerts_used, ingest_cap, readings_cap, alerts_cap;
} cw_http_rings_t;

typedef struct cw_http_cfg {
  const cw_env_t *env;
  uv_loop_t *loop;
  int64_t started_ms;
  /* Fill out for worker i and return 0, or return -1 past the last worker. */
  int (*rings)(void *ctx, int worker, cw_http_rings_t *out);
  void *rings_ctx;
  /* [cluster] (NULL without): bit k of *owned = shard k's lease held, of
   * *sighted = shard k owned and caught up; on the main loop */
  void (*shards)(void *ctx, uint64_t *owned, uint64_t *sighted);
  void *shards_ctx;
  /* May be NULL. 1 and why filled while the database refuses the daemon
   * (credentials, role, pg_hba): /healthz says so. */
  int (*db_refusal)(void *ctx, char *why, size_t cap);
  void *db_refusal_ctx;
} cw_http_cfg_t;

typedef struct cw_http cw_http_t;

/* *out = NULL when [http] listen is "" (off). 0, -EINVAL or a libuv error. */
int cw_http_start(const cw_http_cfg_t *cfg, cw_http_t **out);
void cw_http_stop(cw_http_t *h); /* closes its handles (uv_run to finish) */

#endif
