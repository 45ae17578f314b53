/* preflight.h - what start-up would fail on, checked before anything starts
 * (and by --check-config): the configuration file is a regular readable
 * file, the MQTT URI has a scheme paho speaks, every file the daemon must
 * read exists and is readable (password and TLS files), every directory it
 * must write to is writable (spool, alert log, dead-letter file), and the
 * thresholds are in order. */
#ifndef CW_PREFLIGHT_H
#define CW_PREFLIGHT_H

#include <stddef.h>

#include "config.h"

/* The file given with -c, before it is parsed. 0 or -1 (err filled). */
int cw_preflight_file(const char *path, char *err, size_t cap);
/* The loaded configuration. 0 or -1 with the first problem in err. */
int cw_preflight(const cw_config_t *c, char *err, size_t cap);
/* What only --check-config refuses (start-up warns and goes on): a key
 * given twice in one section, with FILE:LINE of both. 0 or -1. */
int cw_preflight_strict(const cw_config_t *c, char *err, size_t cap);

#endif
