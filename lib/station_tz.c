/* station_tz.c - stations' zones for the alert log (station_tz.h). */
#include "station_tz.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cw.h"
#include "hash.h"
#include "tz.h"

#define ZONE_NAME_MAX 64

typedef struct {
  char name[ZONE_NAME_MAX];
  cw_tz_t tz;
  int ok; /* 0: the zone could not be read (remembered: not retried per event) */
} zone_t;

typedef struct {
  char name[CW_STATION_MAX + 1]; /* "" = empty slot */
  uint32_t zone;                 /* index into zones */
} slot_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static zone_t *zones;
static uint32_t nzones, capzones;
static slot_t *slots;
static uint32_t nslots, mask; /* mask + 1 slots, nslots used */

/* Index of zone name, loaded on first use; UINT32_MAX on ENOMEM. */
static uint32_t zone_find(const char *name) {
  for (uint32_t i = 0; i < nzones; i++)
    if (!strcmp(zones[i].name, name)) return i;
  if (nzones == capzones) {
    uint32_t cap = capzones ? capzones * 2 : 8;
    zone_t *z = realloc(zones, cap * sizeof *z);
    if (!z) return UINT32_MAX;
    zones = z;
    capzones = cap;
  }
  zone_t *z = &zones[nzones];
  memset(z, 0, sizeof *z);
  snprintf(z->name, sizeof z->name, "%s", name);
  z->ok = cw_tz_load(&z->tz, NULL, name) == 0;
  return nzones++;
}

static slot_t *slot_of(const char *station) {
  if (!slots) return NULL;
  uint32_t i = cw_fnv1a32(station, strlen(station)) & mask;
  while (slots[i].name[0]) {
    if (!strcmp(slots[i].name, station)) return &slots[i];
    i = (i + 1) & mask;
  }
  return &slots[i];
}

static int grow(void) {
  uint32_t cap = slots ? (mask + 1) * 2 : 1024;
  slot_t *old = slots;
  uint32_t oldcap = slots ? mask + 1 : 0;
  slots = calloc(cap, sizeof *slots);
  if (!slots) {
    slots = old;
    return -ENOMEM;
  }
  mask = cap - 1;
  for (uint32_t i = 0; i < oldcap; i++)
    if (old[i].name[0]) *slot_of(old[i].name) = old[i];
  free(old);
  return 0;
}

int cw_station_tz_set(const char *station, const char *zone) {
  if (!station || !*station || strlen(station) > CW_STATION_MAX || !zone || !*zone ||
      strlen(zone) >= ZONE_NAME_MAX)
    return -EINVAL;
  pthread_mutex_lock(&mu);
  int rc = 0;
  uint32_t zi = zone_find(zone);
  if (zi == UINT32_MAX) rc = -ENOMEM;
  else if (!zones[zi].ok) rc = -ENOENT;
  if (!rc && (nslots + 1) * 2 > (slots ? mask + 1 : 0)) rc = grow();
  if (!rc) {
    slot_t *s = slot_of(station);
    if (!s->name[0]) {
      snprintf(s->name, sizeof s->name, "%s", station);
      nslots++;
    }
    s->zone = zi;
  } else if (rc == -ENOENT) { /* a station whose zone went bad falls back */
    slot_t *s = slot_of(station);
    if (s && s->name[0]) s->zone = zi;
  }
  pthread_mutex_unlock(&mu);
  return rc;
}

int cw_station_tz_offset_min(const char *station, const char *fallback_zone, int64_t ts_ms) {
  int64_t t = ts_ms >= 0 ? ts_ms / 1000 : -((-ts_ms + 999) / 1000);
  int found = 0;
  int32_t off = 0;
  pthread_mutex_lock(&mu);
  slot_t *s = station ? slot_of(station) : NULL;
  const zone_t *z = s && s->name[0] ? &zones[s->zone] : NULL;
  if ((!z || !z->ok) && fallback_zone && *fallback_zone && strlen(fallback_zone) < ZONE_NAME_MAX) {
    uint32_t zi = zone_find(fallback_zone);
    z = zi == UINT32_MAX ? NULL : &zones[zi];
  }
  if (z && z->ok) {
    off = cw_tz_offset(&z->tz, t);
    found = 1;
  }
  pthread_mutex_unlock(&mu);
  if (!found) { /* the process's local time, as before zones */
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    off = (int32_t)tm.tm_gmtoff;
  }
  return (int)(off >= 0 ? off / 60 : -((-off) / 60));
}

void cw_station_tz_reset(void) {
  pthread_mutex_lock(&mu);
  for (uint32_t i = 0; i < nzones; i++) cw_tz_free(&zones[i].tz);
  free(zones);
  free(slots);
  zones = NULL;
  slots = NULL;
  nzones = capzones = nslots = mask = 0;
  pthread_mutex_unlock(&mu);
}
