/* deadletter.h - the bounded, rotated file of rejected input: one line per
 * reject with time, reason, index, detail, topic and payload (escaped).
 * Thread-safe (mutex). Its write has the shape of cw_reject_fn (env.h):
 * main.c wires it as every part's reject sink. */
#ifndef CW_DEADLETTER_H
#define CW_DEADLETTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cw.h"

typedef struct cw_deadletter cw_deadletter_t;

/* written (may be NULL) counts the lines written. 0 or -errno. */
int cw_deadletter_open(cw_deadletter_t **out, const char *path, uint64_t max_bytes,
                       _Atomic uint64_t *written);
void cw_deadletter_write(cw_deadletter_t *dl, cw_reject_t why, int index, const char *detail,
                         const char *topic, size_t topic_len, const void *payload, size_t len);
void cw_deadletter_reopen(cw_deadletter_t *dl);
void cw_deadletter_close(cw_deadletter_t *dl);

#endif
