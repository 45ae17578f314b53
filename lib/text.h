/* text.h - text helpers shared by the decoder and the daemon's sinks:
 * UTF-8 validation, escaping for a JSON string or a log line, ISO 8601
 * times, and redaction of secrets from a libpq conninfo string. */
#ifndef CW_TEXT_H
#define CW_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s, or 0 (RFC 3629
 * table 3: no overlongs, no surrogates, nothing above U+10FFFF). n >= 1. */
size_t cw_utf8_len(const unsigned char *s, size_t n);

/* Escape bytes as the inside of a JSON string (quotes, backslash, control
 * characters). Invalid UTF-8 becomes \ufffd (CW_ESC_JSON) or \xNN
 * (CW_ESC_HEX, the dead-letter file). Writes a NUL-terminated string;
 * returns its length or -ENOSPC (output truncated at a character boundary). */
#define CW_ESC_JSON 0
#define CW_ESC_HEX 1
int cw_escape(char *out, size_t cap, const void *in, size_t len, int mode);

/* "2026-11-29T08:00:00.123+08:00" for ms since the epoch at a UTC offset.
 * Returns the length or -ENOSPC. */
int cw_iso_time(char *out, size_t cap, int64_t ms, int utc_offset_min);
/* Splits one unquoted CSV line in place (commas become NULs) into at most
 * max fields, dropping anything after the max-th; returns how many. The
 * fields point into line. */
int cw_csv_split(char *line, char **f, int max);

/* Copy a libpq conninfo ("key=value ..." or a postgres:// URI) with the
 * value of password replaced by "***", so it can be logged. Always
 * NUL-terminates; returns the length written. */
size_t cw_conninfo_redact(char *out, size_t cap, const char *conninfo);

#endif
