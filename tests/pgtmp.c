/* pgtmp.c - a throwaway PostgreSQL cluster for unit tests that need a real
 * server (cw_test_pg in test.h): initdb into a fresh temp dir, a postmaster
 * that listens only on a unix socket in that dir, database "cwtest". Started
 * once per process; stopped by PID and removed at exit. The postmaster is our
 * own child and gets SIGINT if this process dies without running atexit
 * (PR_SET_PDEATHSIG), so a crashing test leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define PG_PORT 5432          /* only names the socket file inside our own dir */
#define START_TIMEOUT_MS 60000 /* initdb + first start on a slow CI box */
#define STOP_TIMEOUT_MS 15000

static struct {
  bool tried;
  const char *conninfo; /* NULL when starting failed */
  char dir[256];
  char bindir[256];
  char conn[512];
  pid_t postmaster;
  pid_t owner; /* the process that started it; forked children leave it alone */
  bool as_pg;  /* root: run the server binaries as user postgres */
  uid_t uid;
  gid_t gid;
} pg;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Highest /usr/lib/postgresql/<version>/bin holding initdb and postgres. */
static int find_bindir(void) {
  glob_t g;
  long best = -1;
  if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0) return -1;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    const char *p = g.gl_pathv[i] + strlen("/usr/lib/postgresql/");
    long v = strtol(p, NULL, 10);
    char initdb[256];
    size_t n = strlen(g.gl_pathv[i]) - strlen("postgres");
    if (n + strlen("initdb") >= sizeof(initdb)) continue;
    memcpy(initdb, g.gl_pathv[i], n);
    strcpy(initdb + n, "initdb");
    if (v > best && access(initdb, X_OK) == 0 && access(g.gl_pathv[i], X_OK) == 0) {
      best = v;
      memcpy(pg.bindir, g.gl_pathv[i], n - 1); /* without the trailing slash */
      pg.bindir[n - 1] = 0;
    }
  }
  globfree(&g);
  return best < 0 ? -1 : 0;
}

/* In a forked child: drop to the postgres user when root, send output to
 * log (if any), ask for SIGINT if the test process dies. Never returns on
 * failure (the child exits 127). */
static void child_setup(const char *log) {
  if (pg.as_pg) {
    if (setgroups(0, NULL) < 0 || setgid(pg.gid) < 0 || setuid(pg.uid) < 0) _exit(127);
  }
  prctl(PR_SET_PDEATHSIG, SIGINT); /* after setuid: changing credentials clears it */
  if (getppid() != pg.owner) _exit(127);
  if (log) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
  }
  int nul = open("/dev/null", O_RDONLY);
  if (nul >= 0) dup2(nul, 0);
}

/* Runs argv to completion; 0 when it exited 0. */
static int run(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    child_setup(log);
    execv(argv[0], argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Can the postgres user reach dir? A TMPDIR under /root would not do. */
static bool pg_can_use(const char *dir) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (setgroups(0, NULL) < 0 || setgid(pg.gid) < 0 || setuid(pg.uid) < 0) _exit(1);
    _exit(access(dir, R_OK | W_OK | X_OK) == 0 ? 0 : 1);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return false;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP) rmdir(path);
  else unlink(path);
  return 0;
}

static void remove_dir(void) {
  if (pg.dir[0]) nftw(pg.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  pg.dir[0] = 0;
}

/* Waits up to ms for the postmaster to exit; true when it did. */
static bool reap(int ms) {
  int64_t end = now_ms() + ms;
  for (;;) {
    int st;
    pid_t r = waitpid(pg.postmaster, &st, WNOHANG);
    if (r == pg.postmaster || (r < 0 && errno == ECHILD)) return true;
    if (now_ms() >= end) return false;
    sleep_ms(20);
  }
}

/* SIGINT is PostgreSQL's "fast shutdown"; SIGQUIT "immediate"; then KILL. */
static void stop_server(void) {
  if (pg.owner != getpid()) return;
  if (pg.postmaster > 0) {
    kill(pg.postmaster, SIGINT);
    if (!reap(STOP_TIMEOUT_MS)) {
      fprintf(stderr, "pgtmp: postmaster %d ignored SIGINT, sending SIGQUIT\n", (int)pg.postmaster);
      kill(pg.postmaster, SIGQUIT);
      if (!reap(5000)) {
        kill(pg.postmaster, SIGKILL);
        reap(5000);
      }
    }
    pg.postmaster = 0;
  }
  remove_dir();
}

static void show_log(const char *name) {
  char path[512], line[512];
  snprintf(path, sizeof(path), "%s/%s", pg.dir, name);
  FILE *f = fopen(path, "r");
  if (!f) return;
  fprintf(stderr, "pgtmp: --- %s ---\n", path);
  while (fgets(line, sizeof(line), f)) fputs(line, stderr);
  fclose(f);
}

static int make_dir(void) {
  const char *bases[2] = {getenv("TMPDIR"), "/tmp"};
  for (int i = 0; i < 2; i++) {
    /* The socket path must fit sun_path (108 bytes) and the conninfo must
     * not need quoting. */
    if (!bases[i] || !*bases[i] || strlen(bases[i]) > 64 || strpbrk(bases[i], " '\\\"")) continue;
    snprintf(pg.dir, sizeof(pg.dir), "%s/cwpg.XXXXXX", bases[i]);
    if (!mkdtemp(pg.dir)) continue;
    if (!pg.as_pg) return 0;
    if (chown(pg.dir, pg.uid, pg.gid) == 0 && pg_can_use(pg.dir)) return 0;
    rmdir(pg.dir);
  }
  pg.dir[0] = 0;
  return -1;
}

static int start(void) {
  char data[300], log[300], sock[300], port[16], ping[600];
  if (find_bindir() < 0) {
    fprintf(stderr, "pgtmp: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(install the postgresql package)\n");
    return -1;
  }
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    if (!pw) {
      fprintf(stderr, "pgtmp: running as root and there is no \"postgres\" user to run the server\n");
      return -1;
    }
    pg.as_pg = true;
    pg.uid = pw->pw_uid;
    pg.gid = pw->pw_gid;
  }
  pg.owner = getpid();
  if (make_dir() < 0) {
    fprintf(stderr, "pgtmp: cannot create a temp dir usable by the server: %s\n", strerror(errno));
    return -1;
  }
  atexit(stop_server);
  snprintf(data, sizeof(data), "%s/data", pg.dir);
  snprintf(log, sizeof(log), "%s/initdb.log", pg.dir);
  char initdb[300];
  snprintf(initdb, sizeof(initdb), "%s/initdb", pg.bindir);
  char *iargv[] = {initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync",
                   "-E", "UTF8", "--locale=C", NULL};
  if (run(iargv, log) < 0) {
    fprintf(stderr, "pgtmp: initdb failed\n");
    show_log("initdb.log");
    return -1;
  }
  snprintf(log, sizeof(log), "%s/server.log", pg.dir);
  snprintf(sock, sizeof(sock), "%s", pg.dir);
  snprintf(port, sizeof(port), "%d", PG_PORT);
  char postgres[300];
  snprintf(postgres, sizeof(postgres), "%s/postgres", pg.bindir);
  /* fsync off: a test cluster is thrown away, and it keeps the suite fast */
  char *sargv[] = {postgres, "-D", data, "-k", sock, "-p", port, "-c", "listen_addresses=",
                   "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                   "-c", "max_connections=20", NULL};
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    child_setup(log);
    execv(sargv[0], sargv);
    _exit(127);
  }
  pg.postmaster = pid;
  snprintf(ping, sizeof(ping), "host=%s port=%d dbname=postgres user=postgres connect_timeout=5", pg.dir,
           PG_PORT);
  int64_t end = now_ms() + START_TIMEOUT_MS;
  while (PQping(ping) != PQPING_OK) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      pg.postmaster = 0;
      fprintf(stderr, "pgtmp: postgres exited during startup\n");
      show_log("server.log");
      return -1;
    }
    if (now_ms() > end) {
      fprintf(stderr, "pgtmp: postgres not ready after %d ms\n", START_TIMEOUT_MS);
      show_log("server.log");
      return -1;
    }
    sleep_ms(50);
  }
  PGconn *c = PQconnectdb(ping);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "pgtmp: connect: %s", PQerrorMessage(c));
    PQfinish(c);
    return -1;
  }
  PGresult *r = PQexec(c, "CREATE DATABASE cwtest");
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) fprintf(stderr, "pgtmp: CREATE DATABASE: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  if (!ok) return -1;
  snprintf(pg.conn, sizeof(pg.conn), "host=%s port=%d dbname=cwtest user=postgres", pg.dir, PG_PORT);
  return 0;
}

const char *cw_test_pg(void) {
  if (pg.tried) {
    if (!pg.conninfo) fprintf(stderr, "pgtmp: no test database (startup failed earlier)\n");
    return pg.conninfo;
  }
  pg.tried = true;
  if (start() == 0) pg.conninfo = pg.conn;
  else stop_server();
  return pg.conninfo;
}
