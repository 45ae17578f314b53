/* text.c - see text.h. */
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

size_t cw_utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xBF;
  size_t need;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else
    return 0;
  if (n < need || s[1] < lo || s[1] > hi) return 0;
  for (size_t k = 2; k < need; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return need;
}

int cw_escape(char *out, size_t cap, const void *in, size_t len, int mode) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *p = in;
  size_t o = 0;
  if (cap == 0) return -ENOSPC;
  for (size_t i = 0; i < len;) {
    char tmp[8];
    size_t tn = 0;
    uint8_t c = p[i];
    if (c == '"' || c == '\\') tmp[tn++] = '\\', tmp[tn++] = (char)c;
    else if (c == '\n') tmp[tn++] = '\\', tmp[tn++] = 'n';
    else if (c == '\r') tmp[tn++] = '\\', tmp[tn++] = 'r';
    else if (c == '\t') tmp[tn++] = '\\', tmp[tn++] = 't';
    else if (c < 0x20 || c == 0x7f) {
      memcpy(tmp, "\\u00", 4);
      tmp[4] = hex[c >> 4], tmp[5] = hex[c & 15], tn = 6;
    } else if (c < 0x80) tmp[tn++] = (char)c;
    else {
      size_t u = cw_utf8_len(p + i, len - i);
      if (u) {
        if (o + u >= cap) return out[o] = 0, -ENOSPC;
        memcpy(out + o, p + i, u);
        o += u;
        i += u;
        continue;
      }
      if (mode == CW_ESC_HEX) {
        tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[c >> 4], tmp[3] = hex[c & 15], tn = 4;
      } else {
        memcpy(tmp, "\\ufffd", 6), tn = 6; /* JSON has no byte escapes */
      }
    }
    if (o + tn >= cap) return out[o] = 0, -ENOSPC;
    memcpy(out + o, tmp, tn);
    o += tn;
    i++;
  }
  out[o] = 0;
  return (int)o;
}

int cw_iso_time(char *out, size_t cap, int64_t ms, int utc_offset_min) {
  time_t t = (time_t)(ms / 1000) + (time_t)utc_offset_min * 60;
  int frac = (int)(ms % 1000);
  if (frac < 0) frac += 1000, t -= 1;
  struct tm tm;
  gmtime_r(&t, &tm);
  int off = utc_offset_min < 0 ? -utc_offset_min : utc_offset_min;
  int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac,
                   utc_offset_min < 0 ? '-' : '+', off / 60, off % 60);
  return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

typedef struct {
  char *p;
  size_t cap, n;
} out_t;

static void emit(out_t *o, const char *s, size_t len) {
  for (size_t i = 0; i < len && o->n + 1 < o->cap; i++) o->p[o->n++] = s[i];
  o->p[o->n] = 0;
}

/* End of a key=value value at s: a quoted value ('..' with \ escapes) or
 * up to white space (and, in a URI query, '&'). */
static const char *value_end(const char *s, int uri) {
  if (*s == '\'') {
    for (s++; *s && *s != '\''; s++)
      if (*s == '\\' && s[1]) s++;
    return *s ? s + 1 : s;
  }
  while (*s && *s != ' ' && *s != '\t' && *s != '\n' && !(uri && *s == '&')) s++;
  return s;
}

size_t cw_conninfo_redact(char *out, size_t cap, const char *ci) {
  out_t o = {out, cap, 0};
  if (cap == 0) return 0;
  out[0] = 0;
  const char *s = ci;
  int uri = !strncmp(ci, "postgres://", 11) || !strncmp(ci, "postgresql://", 13);
  if (uri) {
    /* postgresql://user:secret@host/db?password=secret */
    const char *auth = strstr(ci, "://") + 3;
    const char *end = auth + strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *q = auth; q < end; q++)
      if (*q == '@') at = q;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
      emit(&o, ci, (size_t)(colon + 1 - ci));
      emit(&o, "***", 3);
      s = at;
    }
  }
  while (*s) {
    const char *k = s;
    int boundary = k == ci || k[-1] == ' ' || k[-1] == '\t' || k[-1] == '\n' ||
                   (uri && (k[-1] == '?' || k[-1] == '&'));
    if (boundary && !strncmp(k, "password", 8)) {
      const char *e = k + 8;
      while (*e == ' ' || *e == '\t') e++;
      if (*e == '=') {
        e++;
        while (!uri && (*e == ' ' || *e == '\t')) e++;
        emit(&o, k, (size_t)(e - k));
        emit(&o, "***", 3);
        s = value_end(e, uri);
        continue;
      }
    }
    emit(&o, s, 1);
    s++;
  }
  return o.n;
}

int cw_csv_split(char *line, char **f, int max) {
  int n = 0;
  for (char *p = line; n < max;) {
    f[n++] = p;
    char *c = strchr(p, ',');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  return n;
}
