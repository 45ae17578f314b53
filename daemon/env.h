/* env.h - what every part of the daemon may use without knowing any other
 * part: the configuration (read-only), the metrics (atomic counters), the
 * shutdown flag, and the sink for rejected input (main.c wires it to the
 * dead-letter file). Parts get a const cw_env_t * at creation; nothing in
 * it leads to a sibling part. */
#ifndef CW_ENV_H
#define CW_ENV_H

#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "cw.h"
#include "log.h"
#include "metrics.h"

/* One rejected input: why, element index (-1: the whole message), a detail
 * (may be NULL), where it came from (topic or station) and its bytes. */
typedef void (*cw_reject_fn)(void *ctx, cw_reject_t why, int index, const char *detail,
                             const char *topic, size_t topic_len, const void *payload,
                             size_t len);

typedef struct cw_env {
  const cw_config_t *cfg;
  cw_metrics_t *m;
  const _Atomic int *stopping; /* set once the daemon stops (may be NULL) */
  cw_reject_fn reject;         /* may be NULL: counted only */
  void *reject_ctx;
} cw_env_t;

/* Count a reject in m->rejects and hand it to the sink. */
static inline void cw_env_reject(const cw_env_t *e, cw_reject_t why, int index,
                                 const char *detail, const char *topic, size_t topic_len,
                                 const void *payload, size_t len) {
  if ((unsigned)why >= CW_REJ__COUNT) return;
  atomic_fetch_add_explicit(&e->m->rejects[why], 1, memory_order_relaxed);
  if (e->reject) e->reject(e->reject_ctx, why, index, detail, topic, topic_len, payload, len);
}

static inline int cw_env_stopping(const cw_env_t *e) {
  return e->stopping && atomic_load(e->stopping);
}

#endif
