/* station.c - chargewatch station / sessions: one station as an operator
 * sees it on site (each socket's last reading, state and open alerts; the
 * station's local time), and the charging sessions the daemon recorded. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char STATION_HEAD[] =
    "SELECT code, coalesce(name, ''), coalesce(district, ''), site_type, timezone,"
    " cw_local_text(now(), timezone), overnight_allowed, coalesce(breaker_w::text, '-'),"
    " (SELECT count(*) FROM alerts a WHERE a.station = s.code AND a.socket = 0 AND a.state <> 'closed')"
    " FROM stations s WHERE code = $1";

static const char STATION_SOCKETS[] =
    "SELECT k.socket, coalesce(lr.state, '-') AS state, coalesce(lr.w::text, '-') AS w,"
    " coalesce(lr.t::text, '-') AS t, coalesce(lr.wh::text, '-') AS wh,"
    " coalesce(" CLI_AGE_SQL("lr.ts") ", 'never') AS last_reading, lr.ts AS last_ts, k.rated_w, k.forbidden,"
    " coalesce((SELECT string_agg(coalesce(a.ref, a.id::text) || ' ' || a.kind || ' ' || a.severity || ' ' || a.state,"
    "   ', ' ORDER BY a.opened_at) FROM alerts a"
    "  WHERE a.station = k.station AND a.socket IN (k.socket, 0) AND a.state <> 'closed'), '') AS open_alerts"
    " FROM sockets k LEFT JOIN last_reading lr ON lr.station = k.station AND lr.socket = k.socket"
    " WHERE k.station = $1 ORDER BY k.socket";

int cli_station(cli_t *c, int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: chargewatch station CODE\n");
    return CLI_EXIT_USAGE;
  }
  const char *p[1] = {argv[1]};
  PGresult *h = cli_query(c, STATION_HEAD, 1, p);
  if (!h) return CLI_EXIT_FAIL;
  if (PQntuples(h) == 0) {
    fprintf(stderr, "chargewatch station: no station %s\n", argv[1]);
    PQclear(h);
    return CLI_EXIT_FAIL;
  }
  if (c->json) {
    PQclear(h);
    return cli_json(c, STATION_SOCKETS, 1, p);
  }
  PGresult *r = cli_query(c, STATION_SOCKETS, 1, p);
  if (!r) {
    PQclear(h);
    return CLI_EXIT_FAIL;
  }
  printf("%s%s%s%s%s  %s  %s  local time %s  overnight %s  breaker %s W\n", c->color ? "\033[1m" : "",
         PQgetvalue(h, 0, 0), c->color ? "\033[0m" : "", PQgetvalue(h, 0, 1)[0] ? " " : "", PQgetvalue(h, 0, 1),
         PQgetvalue(h, 0, 3), PQgetvalue(h, 0, 4), PQgetvalue(h, 0, 5),
         !strcmp(PQgetvalue(h, 0, 6), "t") ? "allowed" : "forbidden", PQgetvalue(h, 0, 7));
  static const cli_col_t cols[] = {
      {0, "SOCKET", true, NULL}, {1, "STATE", false, NULL},         {2, "W", true, NULL},
      {3, "T", true, NULL},      {4, "WH", true, NULL},             {5, "LAST", true, NULL},
      {9, "OPEN ALERTS", false, NULL},
  };
  cli_table(c, r, cols, 7, "no sockets registered yet");
  PQclear(r);
  PQclear(h);
  return CLI_EXIT_OK;
}

/* --since: a duration ("24h", "7 days") back from now, or a time/date. */
static const char SESSIONS_BASE[] =
    "SELECT s.station, s.socket, cw_local_text(s.started_at, coalesce(st.timezone, cw_default_timezone())) AS started,"
    " (SELECT d / 3600 || ':' || lpad((d % 3600 / 60)::text, 2, '0')"
    "  FROM (SELECT extract(epoch FROM s.ended_at - s.started_at)::bigint AS d) x) AS duration, round(s.energy_wh::numeric, 1) AS energy_wh,"
    " s.peak_w, s.peak_t, s.end_reason, s.readings, s.started_at, s.ended_at"
    " FROM charging_sessions s LEFT JOIN stations st ON st.code = s.station"
    " WHERE ($1::text IS NULL OR s.station = $1)"
    " AND s.ended_at >= CASE WHEN $2 ~ '^\\s*[0-9.]+\\s*[a-zA-Z ]+$' THEN now() - $2::interval"
    "  ELSE $2::timestamptz END"
    " ORDER BY s.started_at DESC LIMIT $3::int";

int cli_sessions(cli_t *c, int argc, char **argv) {
  const char *station = NULL, *since = "24 hours", *limit = "200", *v;
  for (int i = 1; i < argc; i++) {
    if (cli_opt(argc, argv, &i, "--station", &v)) station = v;
    else if (cli_opt(argc, argv, &i, "--since", &v)) since = v;
    else if (cli_opt(argc, argv, &i, "--limit", &v)) limit = v;
    else {
      fprintf(stderr, "chargewatch sessions: unexpected %s\n", argv[i]);
      return CLI_EXIT_USAGE;
    }
  }
  const char *p[3] = {station, since, limit};
  if (c->json) return cli_json(c, SESSIONS_BASE, 3, p);
  PGresult *r = cli_query(c, SESSIONS_BASE, 3, p);
  if (!r) return CLI_EXIT_FAIL;
  static const cli_col_t cols[] = {
      {0, "STATION", false, NULL}, {1, "SOCKET", true, NULL}, {2, "STARTED (LOCAL)", false, NULL},
      {3, "DURATION", true, NULL}, {4, "WH", true, NULL},     {5, "PEAK W", true, NULL},
      {6, "PEAK T", true, NULL},   {8, "READINGS", true, NULL}, {7, "ENDED BY", false, NULL},
  };
  cli_table(c, r, cols, 9, "no sessions in that time");
  PQclear(r);
  return CLI_EXIT_OK;
}
