/* json_arena.h - cJSON parses without malloc: each thread that parses gets
 * a bump arena that cJSON's nodes and key strings are cut from, released in
 * one step when the parsed tree is.
 *
 * A station message of ten readings is ~250 cJSON allocations; through
 * malloc/free they cost about a third of cJSON's parse. The arena is a
 * per-thread cache (64 KiB, allocated on the thread's first parse, freed
 * when the thread exits): a tree larger than it falls back to malloc node by
 * node, so any payload the caller accepts still parses.
 *
 * cJSON's allocation hooks are process-wide (cJSON_InitHooks): installing
 * them makes every cJSON allocation in the process go through this file.
 * Outside cw_json_parse they are plain malloc/free, and cJSON_free of a
 * pointer that is not in the calling thread's arena is free(), so other
 * cJSON users (configuration, alert rendering) see no difference. */
#ifndef CW_JSON_ARENA_H
#define CW_JSON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define CW_JSON_ARENA_BYTES (64u << 10)

/* Installs the hooks once (thread-safe, idempotent). Call before starting
 * threads that use cJSON; cw_json_parse also calls it. */
void cw_json_arena_install(void);

/* cJSON_ParseWithLengthOpts(p, len, end, 0) with the calling thread's
 * arena. The tree must be given back with cw_json_release on the same
 * thread, before the next cw_json_parse there returns: a parse while this
 * thread's arena holds a tree (a nested parse) uses malloc. NULL: as
 * cJSON (invalid or out of memory). */
cJSON *cw_json_parse(const char *p, size_t len, const char **end);
void cw_json_release(cJSON *root); /* NULL: no-op */

/* Bytes of the calling thread's arena in use by its live tree (0: none or
 * not in the arena): for tests. */
size_t cw_json_arena_used(void);

#endif
