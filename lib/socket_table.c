/* socket_table.c - station and socket state of one detection engine: dense
 * arrays that only grow (indices are stable; a station chains its sockets by
 * index) behind open-addressing hash indexes with linear probing, rehashed at
 * 70 % load. Nothing is ever deleted: a socket seen once stays tracked. */
#include "socket_table.h"
#include "hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOAD_NUM 7 /* grow the hash when n + 1 > 0.7 * slots */
#define MAX_LOAD_DEN 10
#define INIT_SLOTS 64

static uint32_t hash_name(const char *s) { return cw_fnv1a32(s, strlen(s)); }

static uint32_t hash_sock(uint32_t station, uint8_t socket) {
  uint64_t x = ((uint64_t)station << 8 | socket) * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing */
  return (uint32_t)(x >> 32);
}

int cw_sock_table_init(cw_sock_table_t *t) {
  memset(t, 0, sizeof(*t));
  t->st_idx = calloc(INIT_SLOTS, sizeof(uint32_t));
  t->so_idx = calloc(INIT_SLOTS, sizeof(uint32_t));
  if (!t->st_idx || !t->so_idx) {
    cw_sock_table_free(t);
    return -ENOMEM;
  }
  t->st_mask = t->so_mask = INIT_SLOTS - 1;
  return 0;
}

void cw_sock_table_free(cw_sock_table_t *t) {
  free(t->st);
  free(t->st_idx);
  free(t->so);
  free(t->so_idx);
  memset(t, 0, sizeof(*t));
}

/* Grow a dense array by 1.5x (bounded slack; indices stay valid). */
static int grow_array(void **arr, uint32_t *cap, size_t elem) {
  uint32_t ncap = *cap ? *cap + *cap / 2 : 16;
  if (ncap < *cap || ncap > UINT32_MAX / 2) return -ENOMEM;
  void *p = realloc(*arr, (size_t)ncap * elem);
  if (!p) return -ENOMEM;
  *arr = p;
  *cap = ncap;
  return 0;
}

static int rehash_stations(cw_sock_table_t *t) {
  uint32_t nslots = (t->st_mask + 1) * 2;
  uint32_t *idx = calloc(nslots, sizeof(uint32_t));
  if (!idx) return -ENOMEM;
  for (uint32_t i = 0; i < t->nst; i++) {
    uint32_t h = hash_name(t->st[i].name) & (nslots - 1);
    while (idx[h]) h = (h + 1) & (nslots - 1);
    idx[h] = i + 1;
  }
  free(t->st_idx);
  t->st_idx = idx;
  t->st_mask = nslots - 1;
  return 0;
}

static int rehash_sockets(cw_sock_table_t *t) {
  uint32_t nslots = (t->so_mask + 1) * 2;
  uint32_t *idx = calloc(nslots, sizeof(uint32_t));
  if (!idx) return -ENOMEM;
  for (uint32_t i = 0; i < t->nso; i++) {
    uint32_t h = hash_sock(t->so[i].station, t->so[i].socket) & (nslots - 1);
    while (idx[h]) h = (h + 1) & (nslots - 1);
    idx[h] = i + 1;
  }
  free(t->so_idx);
  t->so_idx = idx;
  t->so_mask = nslots - 1;
  return 0;
}

int64_t cw_sock_table_find_station(const cw_sock_table_t *t, const char *name) {
  uint32_t h = hash_name(name) & t->st_mask;
  for (uint32_t i; (i = t->st_idx[h]) != 0; h = (h + 1) & t->st_mask)
    if (strcmp(t->st[i - 1].name, name) == 0) return i - 1;
  return -ENOENT;
}

int64_t cw_sock_table_find_socket(const cw_sock_table_t *t, uint32_t station, uint8_t socket) {
  uint32_t h = hash_sock(station, socket) & t->so_mask;
  for (uint32_t i; (i = t->so_idx[h]) != 0; h = (h + 1) & t->so_mask) {
    const cw_sock_t *s = &t->so[i - 1];
    if (s->station == station && s->socket == socket) return i - 1;
  }
  return -ENOENT;
}

int64_t cw_sock_table_station(cw_sock_table_t *t, const char *name) {
  int64_t found = cw_sock_table_find_station(t, name);
  if (found >= 0) return found;
  if ((uint64_t)(t->nst + 1) * MAX_LOAD_DEN > (uint64_t)(t->st_mask + 1) * MAX_LOAD_NUM &&
      rehash_stations(t) < 0)
    return -ENOMEM;
  if (t->nst == t->capst && grow_array((void **)&t->st, &t->capst, sizeof(cw_station_t)) < 0)
    return -ENOMEM;
  cw_station_t *s = &t->st[t->nst];
  memset(s, 0, sizeof(*s));
  size_t len = strnlen(name, CW_STATION_MAX);
  memcpy(s->name, name, len);
  s->name[len] = '\0';
  cw_station_policy_defaults(&s->policy);
  uint32_t h = hash_name(s->name) & t->st_mask;
  while (t->st_idx[h]) h = (h + 1) & t->st_mask;
  t->st_idx[h] = ++t->nst;
  return t->nst - 1;
}

int64_t cw_sock_table_socket(cw_sock_table_t *t, uint32_t station, uint8_t socket) {
  int64_t found = cw_sock_table_find_socket(t, station, socket);
  if (found >= 0) return found;
  if ((uint64_t)(t->nso + 1) * MAX_LOAD_DEN > (uint64_t)(t->so_mask + 1) * MAX_LOAD_NUM &&
      rehash_sockets(t) < 0)
    return -ENOMEM;
  if (t->nso == t->capso && grow_array((void **)&t->so, &t->capso, sizeof(cw_sock_t)) < 0)
    return -ENOMEM;
  cw_sock_t *s = &t->so[t->nso];
  memset(s, 0, sizeof(*s));
  s->station = station;
  s->socket = socket;
  /* chain at the head of the station's list */
  s->next = t->st[station].first;
  t->st[station].first = t->nso + 1;
  t->st[station].nsock++;
  uint32_t h = hash_sock(station, socket) & t->so_mask;
  while (t->so_idx[h]) h = (h + 1) & t->so_mask;
  t->so_idx[h] = ++t->nso;
  return t->nso - 1;
}

size_t cw_sock_table_bytes(const cw_sock_table_t *t) {
  return (size_t)t->capst * sizeof(cw_station_t) + (size_t)(t->st_mask + 1) * sizeof(uint32_t) +
         (size_t)t->capso * sizeof(cw_sock_t) + (size_t)(t->so_mask + 1) * sizeof(uint32_t);
}
