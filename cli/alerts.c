/* alerts.c - chargewatch alerts / ack / rectify / close / tail: the alert
 * list an operator reads first, the lifecycle actions (cw_ack, cw_rectify,
 * cw_close by short reference or id, recorded with the database role), and
 * the live event stream (LISTEN cw_alert_events) printed in the alert log's
 * line format: UTC time, SEVERITY, kind, event, key=value pairs, then the
 * station's local time and the quoted message. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char ALERTS_BASE[] =
    "SELECT coalesce(a.ref, a.id::text) AS ref, a.id, " CLI_AGE_SQL("a.opened_at") " AS age,"
    " a.station, a.socket, a.kind, a.severity, a.state, coalesce(a.message, '') AS message,"
    " a.opened_at, a.acked_by, a.rectify_note, a.peak_value, a.threshold, a.unit"
    " FROM alerts a"
    " WHERE ($1::bool OR a.state <> 'closed') AND ($2::text IS NULL OR a.station = $2)"
    " AND ($3::text IS NULL OR a.kind = $3)"
    " ORDER BY a.state = 'closed', a.severity = 'critical' DESC, a.opened_at DESC"
    " LIMIT $4::int";

int cli_alerts(cli_t *c, int argc, char **argv) {
  const char *station = NULL, *kind = NULL, *limit = "500", *all = "false", *v;
  for (int i = 1; i < argc; i++) {
    if (cli_opt(argc, argv, &i, "--station", &v)) station = v;
    else if (cli_opt(argc, argv, &i, "--kind", &v)) kind = v;
    else if (cli_opt(argc, argv, &i, "--limit", &v)) limit = v;
    else if (!strcmp(argv[i], "--all")) all = "true";
    else {
      fprintf(stderr, "chargewatch alerts: unexpected %s\n", argv[i]);
      return CLI_EXIT_USAGE;
    }
  }
  const char *p[4] = {all, station, kind, limit};
  if (c->json) return cli_json(c, ALERTS_BASE, 4, p);
  PGresult *r = cli_query(c, ALERTS_BASE, 4, p);
  if (!r) return CLI_EXIT_FAIL;
  static const cli_col_t cols[] = {
      {0, "REF", false, NULL},          {2, "AGE", true, NULL},
      {3, "STATION", false, NULL},      {4, "SOCKET", true, NULL},
      {5, "KIND", false, NULL},         {6, "SEVERITY", false, cli_color_severity},
      {7, "STATE", false, cli_color_state}, {8, "MESSAGE", false, NULL},
  };
  cli_table(c, r, cols, 8, station || kind ? "no alerts match" : "no open alerts");
  PQclear(r);
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------- actions */

int cli_act(cli_t *c, const char *action, int argc, char **argv) {
  const char *id = NULL, *note = NULL, *by = NULL, *v;
  for (int i = 1; i < argc; i++) {
    if (cli_opt(argc, argv, &i, "--note", &v)) note = v;
    else if (cli_opt(argc, argv, &i, "--by", &v)) by = v;
    else if (argv[i][0] != '-' && !id) id = argv[i];
    else {
      fprintf(stderr, "chargewatch %s: unexpected %s\n", action, argv[i]);
      return CLI_EXIT_USAGE;
    }
  }
  if (!id) {
    fprintf(stderr, "chargewatch %s: which alert? (a reference like A-1129-0042, or an id)\n", action);
    return CLI_EXIT_USAGE;
  }
  /* cw_ack(ref, by, note), cw_rectify(ref, note, by), cw_close(ref, by, note) */
  const char *sql = !strcmp(action, "ack")       ? "SELECT cw_ack($1::text, $2, $3), cw_alert_resolve($1)"
                    : !strcmp(action, "rectify") ? "SELECT cw_rectify($1::text, $3, $2), cw_alert_resolve($1)"
                                                 : "SELECT cw_close($1::text, $2, $3), cw_alert_resolve($1)";
  const char *p[3] = {id, by, note};
  PGresult *r = cli_query(c, sql, 3, p);
  if (!r) return CLI_EXIT_FAIL;
  bool done = !strcmp(PQgetvalue(r, 0, 0), "t");
  const char *q[1] = {PQgetvalue(r, 0, 1)};
  PGresult *a = cli_query(c,
                          "SELECT coalesce(ref, id::text), id, station, socket, kind, state, session_user,"
                          " coalesce(acked_by, ''), coalesce(rectified_by, ''), coalesce(closed_by, '')"
                          " FROM alerts WHERE id = $1::bigint",
                          1, q);
  PQclear(r);
  if (!a) return CLI_EXIT_FAIL;
  if (c->json) {
    PQclear(a);
    const char *j[2] = {q[0], done ? "true" : "false"};
    return cli_json(c, "SELECT $2::bool AS done, coalesce(ref, id::text) AS ref, id, station, socket, kind, state,"
                       " session_user AS role FROM alerts WHERE id = $1::bigint", 2, j) ||
                   !done
               ? CLI_EXIT_FAIL
               : CLI_EXIT_OK;
  }
  if (done)
    printf("%s %s (%s socket %s %s): %s by %s\n", action, PQgetvalue(a, 0, 0), PQgetvalue(a, 0, 2),
           PQgetvalue(a, 0, 3), PQgetvalue(a, 0, 4), PQgetvalue(a, 0, 5), PQgetvalue(a, 0, 6));
  else
    fprintf(stderr, "chargewatch %s: nothing to do: %s is %s\n", action, PQgetvalue(a, 0, 0), PQgetvalue(a, 0, 5));
  PQclear(a);
  return done ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ------------------------------------------------------------- tail */

/* One event, as the alert log prints it (columns of EVENT_SQL). */
static const char EVENT_COLS[] =
    "SELECT cw_utc_text(e.ts), upper(coalesce(e.severity, a.severity)), a.kind, e.event, a.id::text AS id,"
    " a.station, a.socket::text, coalesce(e.detail->>'state', a.state),"
    " coalesce(e.value::real::text, ''), coalesce(a.threshold::real::text, ''), coalesce(a.unit, ''),"
    " coalesce(e.detail->>'by', ''), coalesce(a.ref, ''),"
    " cw_local_text(e.ts, coalesce(s.timezone, cw_default_timezone())), coalesce(e.detail->>'message', a.message, ''),"
    " coalesce(e.detail->>'note', ''), (extract(epoch FROM e.ts) * 1000000)::bigint::text AS ts_us,"
    " json_build_object('id', a.id, 'ref', a.ref, 'kind', a.kind, 'severity', coalesce(e.severity, a.severity),"
    "  'event', e.event, 'state', coalesce(e.detail->>'state', a.state), 'station', a.station, 'socket', a.socket,"
    "  'ts', (extract(epoch FROM e.ts) * 1000)::bigint, 'value', e.value, 'threshold', a.threshold,"
    "  'unit', a.unit, 'by', e.detail->>'by', 'note', e.detail->>'note',"
    "  'message', coalesce(e.detail->>'message', a.message), 'local_time', cw_local_text(e.ts, coalesce(s.timezone, cw_default_timezone())))"
    " FROM alert_events e JOIN alerts a ON a.id = e.alert_id LEFT JOIN stations s ON s.code = a.station";

/* Numbers read as reals in the log: "3.2", "90.0". */
static void put_num(char *out, size_t cap, size_t *n, const char *v) {
  if (!v[0]) {
    cli_escape(out, cap, n, "null");
    return;
  }
  cli_escape(out, cap, n, v);
  if (!strpbrk(v, ".eEnN")) cli_escape(out, cap, n, ".0");
}

static void print_event(cli_t *c, PGresult *r, int i) {
  if (c->json) {
    printf("%s\n", PQgetvalue(r, i, 17));
    fflush(stdout);
    return;
  }
  char line[4096];
  size_t n = 0;
  const char *sev = PQgetvalue(r, i, 1);
  const char *sgr = c->color ? (!strcmp(sev, "CRITICAL") ? "1;31" : !strcmp(sev, "WARNING") ? "33" : NULL) : NULL;
  if (sgr)
    n = (size_t)snprintf(line, sizeof line, "%s \033[%sm%s\033[0m", PQgetvalue(r, i, 0), sgr, sev);
  else
    n = (size_t)snprintf(line, sizeof line, "%s %s", PQgetvalue(r, i, 0), sev);
  n += (size_t)snprintf(line + n, sizeof line - n, " %s %s id=%s station=", PQgetvalue(r, i, 2),
                        PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
  cli_escape(line, sizeof line, &n, PQgetvalue(r, i, 5));
  n += (size_t)snprintf(line + n, sizeof line - n, " socket=%s state=%s value=", PQgetvalue(r, i, 6),
                        PQgetvalue(r, i, 7));
  put_num(line, sizeof line, &n, PQgetvalue(r, i, 8));
  cli_escape(line, sizeof line, &n, " threshold=");
  put_num(line, sizeof line, &n, PQgetvalue(r, i, 9));
  cli_escape(line, sizeof line, &n, " unit=");
  cli_escape(line, sizeof line, &n, PQgetvalue(r, i, 10));
  if (PQgetvalue(r, i, 11)[0]) {
    cli_escape(line, sizeof line, &n, " by=");
    if (n + 1 < sizeof line) line[n++] = '"', line[n] = 0;
    cli_escape(line, sizeof line, &n, PQgetvalue(r, i, 11));
    if (n + 1 < sizeof line) line[n++] = '"', line[n] = 0;
  }
  if (PQgetvalue(r, i, 15)[0]) {
    cli_escape(line, sizeof line, &n, " note=");
    if (n + 1 < sizeof line) line[n++] = '"', line[n] = 0;
    cli_escape(line, sizeof line, &n, PQgetvalue(r, i, 15));
    if (n + 1 < sizeof line) line[n++] = '"', line[n] = 0;
  }
  if (PQgetvalue(r, i, 12)[0]) {
    cli_escape(line, sizeof line, &n, " ref=");
    cli_escape(line, sizeof line, &n, PQgetvalue(r, i, 12));
  }
  cli_escape(line, sizeof line, &n, " local=");
  cli_escape(line, sizeof line, &n, PQgetvalue(r, i, 13));
  if (n + 2 < sizeof line) line[n++] = ' ', line[n++] = '"', line[n] = 0;
  cli_escape(line, sizeof line, &n, PQgetvalue(r, i, 14));
  if (n + 1 < sizeof line) line[n++] = '"', line[n] = 0;
  puts(line);
  fflush(stdout);
}

static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) {
  (void)sig;
  stop_flag = 1;
}

/* Prints the events named by the pending notifications. */
static int drain(cli_t *c, char *last_us, size_t cap) {
  PGnotify *nt;
  char sql[sizeof EVENT_COLS + 200];
  snprintf(sql, sizeof sql,
           "%s WHERE e.alert_id = ($1::json->>'alert_id')::bigint AND e.event = $1::json->>'event'"
           " AND e.ts = timestamptz 'epoch' + ($1::json->>'ts_us')::bigint * interval '1 microsecond'",
           EVENT_COLS);
  while ((nt = PQnotifies(c->db)) != NULL) {
    const char *p[1] = {nt->extra};
    PGresult *r = cli_query(c, sql, 1, p);
    PQfreemem(nt);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
      print_event(c, r, i);
      if (strtoll(PQgetvalue(r, i, 16), NULL, 10) > strtoll(last_us, NULL, 10))
        snprintf(last_us, cap, "%s", PQgetvalue(r, i, 16));
    }
    PQclear(r);
  }
  return 0;
}

/* Events stored after last_us (by event time): the backlog at start (the
 * last n) and what a reconnection may have missed. */
static int backlog(cli_t *c, const char *n, char *last_us, size_t cap) {
  char sql[sizeof EVENT_COLS + 300];
  snprintf(sql, sizeof sql,
           "SELECT * FROM (%s WHERE e.ts > timestamptz 'epoch' + $2::bigint * interval '1 microsecond'"
           " ORDER BY e.ts DESC, e.alert_id DESC LIMIT $1::int) x ORDER BY x.ts_us::bigint, x.id::bigint",
           EVENT_COLS);
  const char *p[2] = {n, last_us};
  PGresult *r = cli_query(c, sql, 2, p);
  if (!r) return -1;
  for (int i = 0; i < PQntuples(r); i++) {
    print_event(c, r, i);
    snprintf(last_us, cap, "%s", PQgetvalue(r, i, 16));
  }
  PQclear(r);
  return 0;
}

int cli_tail(cli_t *c, int argc, char **argv) {
  const char *n = "10", *v;
  char last_us[32] = "0";
  for (int i = 1; i < argc; i++) {
    if (cli_opt(argc, argv, &i, "-n", &v) || cli_opt(argc, argv, &i, "--lines", &v)) n = v;
    else {
      fprintf(stderr, "chargewatch tail: unexpected %s\n", argv[i]);
      return CLI_EXIT_USAGE;
    }
  }
  struct sigaction sa = {.sa_handler = on_stop};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  PGresult *r = cli_query(c, "LISTEN cw_alert_events", 0, NULL);
  if (!r) return CLI_EXIT_FAIL;
  PQclear(r);
  /* LISTEN first, then the backlog: an event stored in between is printed
   * by both only if it is newer than the backlog's last (then drain skips
   * nothing; a duplicate line is possible, a gap is not). */
  if (strcmp(n, "0") && backlog(c, n, last_us, sizeof last_us)) return CLI_EXIT_FAIL;
  fflush(stdout);
  int down_ms = 0;
  while (!stop_flag) {
    if (PQstatus(c->db) != CONNECTION_OK) {
      /* Reconnect every 2 s; then print what was stored meanwhile. */
      if (down_ms == 0) fprintf(stderr, "chargewatch tail: connection lost, reconnecting\n");
      poll(NULL, 0, 200);
      down_ms += 200;
      if (down_ms % 2000) continue;
      PQreset(c->db);
      if (PQstatus(c->db) != CONNECTION_OK) continue;
      r = cli_query(c, "LISTEN cw_alert_events", 0, NULL);
      if (r) PQclear(r);
      fprintf(stderr, "chargewatch tail: reconnected\n");
      down_ms = 0;
      if (backlog(c, "100000", last_us, sizeof last_us)) return CLI_EXIT_FAIL;
      continue;
    }
    struct pollfd pfd = {PQsocket(c->db), POLLIN, 0};
    int rc = poll(&pfd, 1, 1000);
    if (rc < 0 && errno != EINTR) break;
    if (rc > 0 && !PQconsumeInput(c->db)) continue; /* status is now bad: reconnect above */
    if (drain(c, last_us, sizeof last_us)) return CLI_EXIT_FAIL;
  }
  return CLI_EXIT_OK;
}
