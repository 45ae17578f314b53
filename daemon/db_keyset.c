/* db_keyset.c - the small open-addressing sets keyed by (station, socket)
 * the writer keeps per batch and per connection, and the growing text
 * buffers it builds array literals in (db.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "hash.h"

static uint64_t key_hash(const char *st, uint8_t sock) { return cw_fnv1a64_str_byte(st, sock); }

static int wset_grow(cw_wset_t *s) {
  size_t ncap = s->cap ? s->cap * 2 : 1024;
  cw_wkey_t *ne = calloc(ncap, sizeof(*ne));
  if (!ne) return -ENOMEM;
  for (size_t i = 0; i < s->cap; i++) {
    if (!s->e[i].used) continue;
    size_t j = key_hash(s->e[i].station, s->e[i].socket) & (ncap - 1);
    while (ne[j].used) j = (j + 1) & (ncap - 1);
    ne[j] = s->e[i];
  }
  free(s->e);
  s->e = ne;
  s->cap = ncap;
  return 0;
}

/* Find or insert; *created tells which. NULL on ENOMEM. */
cw_wkey_t *cw__wset_get(cw_wset_t *s, const char *st, uint8_t sock, int insert, int *created) {
  if (created) *created = 0;
  if (insert && (s->len + 1) * 2 > s->cap && wset_grow(s)) return NULL;
  if (!s->cap) return NULL;
  size_t j = key_hash(st, sock) & (s->cap - 1);
  while (s->e[j].used) {
    if (s->e[j].socket == sock && !strcmp(s->e[j].station, st)) return &s->e[j];
    j = (j + 1) & (s->cap - 1);
  }
  if (!insert) return NULL;
  cw_wkey_t *k = &s->e[j];
  size_t len = strnlen(st, sizeof(k->station) - 1);
  memcpy(k->station, st, len);
  k->station[len] = '\0';
  k->socket = sock;
  k->used = 1;
  k->ts_ms = INT64_MIN;
  s->len++;
  if (created) *created = 1;
  return k;
}

void cw__wset_clear(cw_wset_t *s) {
  if (s->len) memset(s->e, 0, s->cap * sizeof(*s->e));
  s->len = 0;
}

void cw__wdb_known_add(cw_wdb_t *db, const char *station) { cw__wset_get(&db->known, station, 0, 1, NULL); }
void cw__wdb_known_clear(cw_wdb_t *db) { cw__wset_clear(&db->known); }

int cw__wbuf_add(cw_wbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + n + 1) ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) return -ENOMEM;
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

