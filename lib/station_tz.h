/* station_tz.h - the local time in the alert log: each station's IANA zone
 * (stations.timezone, loaded with the station policies by db_policy.c on
 * the writer thread, again at each reload) and the zones' UTC offsets
 * (lib/tz.h, from the tzfiles: no process-wide TZ, so thread-safe), read
 * by the alert sink on the main loop. One table per process behind a
 * mutex: a station's zone is a fact about the station, the same for every
 * part. The offset is the one in force at the event's own instant, so
 * daylight saving is applied exactly as the zone defines it (a UTC instant
 * has one local time: no gap or overlap to resolve). */
#ifndef CW_STATION_TZ_H
#define CW_STATION_TZ_H

#include <stdint.h>

/* 0; -ENOENT or -EINVAL when the zone cannot be read (the station then
 * falls back); -ENOMEM. */
int cw_station_tz_set(const char *station, const char *zone);
/* UTC offset in minutes at ts_ms for station: its zone, else fallback_zone
 * ([alerts] default_timezone), else the process's local time. */
int cw_station_tz_offset_min(const char *station, const char *fallback_zone, int64_t ts_ms);
/* Forget every station and zone (tests; the daemon keeps them for life). */
void cw_station_tz_reset(void);

#endif
