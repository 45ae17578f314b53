/* cli.h - the chargewatch operator command: what its parts share. main.c
 * parses the global options and connects (psql's conventions), table.c
 * prints result sets as aligned tables or JSON, alerts.c lists and acts on
 * alerts and follows them, station.c shows a station and its sessions. */
#ifndef CW_CLI_H
#define CW_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* the database said no, or nothing to do */
#define CLI_EXIT_USAGE 2 /* bad arguments */

typedef struct cli {
  PGconn *db;
  bool json;  /* --json */
  bool color; /* on a tty, unless --no-color / NO_COLOR / TERM=dumb */
  int width;  /* terminal columns when stdout is a tty, else 0 (no cut) */
  const char *prog;
} cli_t;

/* One table column: result column col, its header, right-aligned or not,
 * and an optional colour (ANSI SGR parameters, e.g. "1;31") by value. */
typedef struct cli_col {
  int col;
  const char *head;
  bool right;
  const char *(*color)(const char *value);
} cli_col_t;

/* Runs sql with text params (NULL = SQL NULL). Prints the server's message
 * and returns NULL on error; the caller PQclear()s the result. */
PGresult *cli_query(cli_t *c, const char *sql, int nparams, const char *const *params);

/* Prints r as a table (header, aligned columns; on a tty the last column
 * is cut to the terminal width), or "(none)" text when empty. */
void cli_table(cli_t *c, PGresult *r, const cli_col_t *cols, int ncols, const char *empty);

/* Runs "SELECT coalesce(json_agg(q), '[]') FROM (base) q" and prints it. */
int cli_json(cli_t *c, const char *base, int nparams, const char *const *params);

/* Appends s to out with the alert log's escaping (JSON string rules:
 * quote, backslash, control characters). Returns 0 or -1 when out is full. */
int cli_escape(char *out, size_t cap, size_t *n, const char *s);

/* Colours by value for severity and state columns. */
const char *cli_color_severity(const char *v);
const char *cli_color_state(const char *v);

/* Parses "--name VALUE" / "--name=VALUE" at argv[*i]; advances *i. */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* SQL for a compact age ("42s", "7m", "3h05m", "2d04h") of a timestamp expression. */
#define CLI_AGE_SQL(x)                                                                                \
  "(SELECT CASE WHEN s < 60 THEN s || 's' WHEN s < 3600 THEN s / 60 || 'm'"                        \
  " WHEN s < 86400 THEN s / 3600 || 'h' || lpad((s % 3600 / 60)::text, 2, '0') || 'm'"             \
  " ELSE s / 86400 || 'd' || lpad((s % 86400 / 3600)::text, 2, '0') || 'h' END"                    \
  " FROM (SELECT greatest(0, extract(epoch FROM now() - (" x ")))::bigint AS s) z)"

int cli_alerts(cli_t *c, int argc, char **argv);
int cli_act(cli_t *c, const char *action, int argc, char **argv);
int cli_tail(cli_t *c, int argc, char **argv);
int cli_station(cli_t *c, int argc, char **argv);
int cli_sessions(cli_t *c, int argc, char **argv);

#endif
