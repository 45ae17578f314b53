/* db_lifecycle.c - the readings' life after they are stored: hourly rollups
 * (cw_rollup_readings) of the last complete hours, and retention (the
 * daily partitions older than [postgres] retain_days are rolled up whole and
 * dropped by cw_drop_old_partitions, schema/003_ops.sql). Run by the writer
 * at each connection, every hour and at each UTC day change. */
#include <stdio.h>
#include <stdlib.h>

#include "db.h"

void cw__db_lifecycle(cw_wdb_t *db, int retain_days) {
  PGconn *c = db->conn;
  /* The two hours before the current one: the last complete hour, and the
   * one before it again for readings that arrived late (idempotent). */
  PGresult *r = PQexec(c, "SELECT cw_rollup_readings(date_trunc('hour', now()) - interval '2 hours',"
                          " date_trunc('hour', now()))");
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    cw_log(CW_LOG_WARN, "writer: hourly rollup: %s", PQerrorMessage(c));
  PQclear(r);
  if (retain_days <= 0) return;
  char days[16];
  const char *p[1] = {days};
  snprintf(days, sizeof days, "%d", retain_days);
  r = PQexecParams(c, "SELECT partition, day, rows FROM cw_drop_old_partitions($1::int)", 1, NULL, p,
                   NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    cw_log(CW_LOG_WARN, "writer: dropping readings older than %d days: %s", retain_days,
           PQerrorMessage(c));
    PQclear(r);
    return;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    cw_log(CW_LOG_INFO, "writer: retention: dropped partition %s (day %s, %s rows, rolled up first)",
           PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    atomic_fetch_add(&db->env->m->partitions_dropped, 1);
  }
  PQclear(r);
}
