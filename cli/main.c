/* main.c - chargewatch, the operator command: lists and acts on alerts,
 * shows a station and its charging sessions, follows alert events live.
 * It talks only to the database, with psql's conventions: PG* variables,
 * service files, -d CONNINFO|DBNAME|URI, -h -p -U; the database is
 * "chargewatch" unless one is named. Actions are recorded with the
 * database role (schema/003_ops.sql). See chargewatch(1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "cw.h"

static void usage(FILE *f) {
  fputs("usage: chargewatch [-d CONNINFO] [-h HOST] [-p PORT] [-U USER] [--json] [--no-color] COMMAND\n"
        "commands:\n"
        "  alerts [--station S] [--kind K] [--all] [--limit N]   open alerts (--all: closed too)\n"
        "  ack ID [--note TEXT] [--by NAME]                      acknowledge (ID: A-MMDD-N or numeric id)\n"
        "  rectify ID [--note TEXT] [--by NAME]                  mark as fixed\n"
        "  close ID [--note TEXT] [--by NAME]                    close\n"
        "  station CODE                                          sockets, last readings, open alerts\n"
        "  sessions [--station S] [--since WHEN] [--limit N]     charging sessions (WHEN: 24h, 7d, 2026-11-01)\n"
        "  tail [-n N]                                           follow alert events as they are stored\n"
        "  --version, --help\n",
        f);
}

static void on_notice(void *arg, const char *msg) {
  (void)arg;
  (void)msg; /* NOTICEs from the functions are for psql users; results say it */
}

int main(int argc, char **argv) {
  cli_t c = {.prog = "chargewatch"};
  const char *dbname = NULL, *host = NULL, *port = NULL, *user = NULL, *v;
  bool no_color = false;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--help")) {
      usage(stdout);
      return CLI_EXIT_OK;
    } else if (!strcmp(argv[i], "--version")) {
      printf("chargewatch %s\n", CW_VERSION);
      return CLI_EXIT_OK;
    } else if (!strcmp(argv[i], "--json")) {
      c.json = true;
    } else if (!strcmp(argv[i], "--no-color")) {
      no_color = true;
    } else if (cli_opt(argc, argv, &i, "-d", &v) || cli_opt(argc, argv, &i, "--dbname", &v)) {
      dbname = v;
    } else if (cli_opt(argc, argv, &i, "-h", &v) || cli_opt(argc, argv, &i, "--host", &v)) {
      host = v;
    } else if (cli_opt(argc, argv, &i, "-p", &v) || cli_opt(argc, argv, &i, "--port", &v)) {
      port = v;
    } else if (cli_opt(argc, argv, &i, "-U", &v) || cli_opt(argc, argv, &i, "--username", &v)) {
      user = v;
    } else {
      fprintf(stderr, "chargewatch: unknown option %s\n", argv[i]);
      usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *cmd = argv[i];
  int cargc = argc - i;
  char **cargv = argv + i;
  /* Options after the command too: chargewatch alerts --json */
  for (int j = 1; j < cargc; j++) {
    if (!strcmp(cargv[j], "--json") || !strcmp(cargv[j], "--no-color")) {
      if (cargv[j][2] == 'j') c.json = true;
      else no_color = true;
      memmove(cargv + j, cargv + j + 1, (size_t)(cargc - j - 1) * sizeof *cargv);
      cargc--;
      j--;
    }
  }
  const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
  if (isatty(STDOUT_FILENO)) {
    struct winsize ws;
    c.color = !no_color && !(nc && nc[0]) && !(term && !strcmp(term, "dumb"));
    c.width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
  }
  if (!dbname && !getenv("PGDATABASE") && !getenv("PGSERVICE")) dbname = "chargewatch";

  static const char *const known[] = {"alerts", "ack", "rectify", "close", "station", "sessions", "tail"};
  bool ok = false;
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) ok |= !strcmp(cmd, known[k]);
  if (!ok) {
    fprintf(stderr, "chargewatch: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
  }

  const char *keys[6], *vals[6];
  int n = 0;
#define KV(k, x) \
  if (x) keys[n] = k, vals[n++] = x
  KV("dbname", dbname);
  KV("host", host);
  KV("port", port);
  KV("user", user);
  keys[n] = "application_name", vals[n++] = "chargewatch";
  keys[n] = NULL, vals[n] = NULL;
#undef KV
  c.db = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(c.db) != CONNECTION_OK) {
    fprintf(stderr, "chargewatch: %s", PQerrorMessage(c.db));
    PQfinish(c.db);
    return CLI_EXIT_FAIL;
  }
  PQsetNoticeProcessor(c.db, on_notice, NULL);

  int rc;
  if (!strcmp(cmd, "alerts")) rc = cli_alerts(&c, cargc, cargv);
  else if (!strcmp(cmd, "station")) rc = cli_station(&c, cargc, cargv);
  else if (!strcmp(cmd, "sessions")) rc = cli_sessions(&c, cargc, cargv);
  else if (!strcmp(cmd, "tail")) rc = cli_tail(&c, cargc, cargv);
  else rc = cli_act(&c, cmd, cargc, cargv);
  PQfinish(c.db);
  return rc;
}
