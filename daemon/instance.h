/* instance.h - one daemon per configuration: an exclusive lock (flock) on
 * {spool_dir}/chargewatchd.lock, which holds the PID of its owner. The spool,
 * the alert outbox and the MQTT client ids belong to one process; a second
 * copy on the same configuration is refused with the holder's PID. The lock
 * goes with the process (no stale lock after a crash or SIGKILL). */
#ifndef CW_INSTANCE_H
#define CW_INSTANCE_H

#include <stddef.h>

/* Take the lock; keeps the file open until exit. 0, or -EWOULDBLOCK (held:
 * *holder is its PID, 0 if unknown) or -errno; err gets the reason. */
int cw_instance_lock(const char *spool_dir, int *holder, char *err, size_t cap);

#endif
