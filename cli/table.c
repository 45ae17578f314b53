/* table.c - output of the operator command: aligned tables with colour on a
 * terminal (widths counted in terminal cells, wide CJK characters as two),
 * plain text when piped, JSON built by the database (one escaping). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

PGresult *cli_query(cli_t *c, const char *sql, int nparams, const char *const *params) {
  PGresult *r = PQexecParams(c->db, sql, nparams, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *h = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
    fprintf(stderr, "%s: %s\n", c->prog, m ? m : PQerrorMessage(c->db));
    if (h) fprintf(stderr, "%s: hint: %s\n", c->prog, h);
    PQclear(r);
    return NULL;
  }
  return r;
}

int cli_json(cli_t *c, const char *base, int nparams, const char *const *params) {
  size_t n = strlen(base) + 64;
  char *sql = malloc(n);
  if (!sql) return CLI_EXIT_FAIL;
  snprintf(sql, n, "SELECT coalesce(json_agg(q), '[]') FROM (%s) q", base);
  PGresult *r = cli_query(c, sql, nparams, params);
  free(sql);
  if (!r) return CLI_EXIT_FAIL;
  printf("%s\n", PQgetvalue(r, 0, 0));
  PQclear(r);
  return CLI_EXIT_OK;
}

/* Decodes one UTF-8 sequence at s (len bytes left); returns its length
 * (1 for an invalid byte, shown as one cell) and the code point. */
static int utf8_next(const unsigned char *s, size_t len, unsigned *cp) {
  int n = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 0;
  if (n == 0 || (size_t)n > len) {
    *cp = 0xFFFD;
    return 1;
  }
  unsigned v = n == 1 ? s[0] : s[0] & (0x7F >> n);
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) {
      *cp = 0xFFFD;
      return 1;
    }
    v = v << 6 | (s[i] & 0x3F);
  }
  *cp = v;
  return n;
}

/* East Asian wide and fullwidth ranges (Unicode UAX #11, the common blocks). */
static int cells(unsigned cp) {
  if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
      (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
      (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) || (cp >= 0x20000 && cp <= 0x3FFFD))
    return 2;
  return cp < 0x20 ? 0 : 1;
}

static int text_width(const char *s) {
  int w = 0;
  size_t len = strlen(s);
  for (size_t i = 0; i < len;) {
    unsigned cp;
    i += (size_t)utf8_next((const unsigned char *)s + i, len - i, &cp);
    w += cells(cp);
  }
  return w;
}

/* Prints s padded (or, with cut > 0, cut to at most cut cells, ending in
 * "~" when cut) to width cells. Control characters are not printed. */
static void put_cell(const char *s, int width, bool right, int cut) {
  int w = text_width(s);
  if (cut > 0 && w > cut) {
    size_t len = strlen(s);
    int used = 0;
    for (size_t i = 0; i < len;) {
      unsigned cp;
      int n = utf8_next((const unsigned char *)s + i, len - i, &cp);
      if (used + cells(cp) > cut - 1) break;
      if (cells(cp) > 0) fwrite(s + i, 1, (size_t)n, stdout);
      used += cells(cp);
      i += (size_t)n;
    }
    fputc('~', stdout);
    for (used++; used < width; used++) fputc(' ', stdout);
    return;
  }
  if (right)
    for (int i = w; i < width; i++) fputc(' ', stdout);
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p >= 0x20) fputc(*p, stdout);
  if (!right)
    for (int i = w; i < width; i++) fputc(' ', stdout);
}

void cli_table(cli_t *c, PGresult *r, const cli_col_t *cols, int ncols, const char *empty) {
  int rows = PQntuples(r);
  int w[32];
  if (ncols > 32) ncols = 32;
  if (rows == 0) {
    printf("%s\n", empty);
    return;
  }
  for (int j = 0; j < ncols; j++) {
    w[j] = text_width(cols[j].head);
    for (int i = 0; i < rows; i++) {
      int x = text_width(PQgetvalue(r, i, cols[j].col));
      if (x > w[j]) w[j] = x;
    }
  }
  /* On a terminal the last column gets what is left of the line. */
  int cut = 0;
  if (c->width > 0) {
    int used = 0;
    for (int j = 0; j < ncols - 1; j++) used += w[j] + 2;
    cut = c->width - used;
    if (cut < 10) cut = 10;
    if (w[ncols - 1] > cut) w[ncols - 1] = cut;
    else cut = 0;
  }
  for (int j = 0; j < ncols; j++) {
    if (c->color) fputs("\033[1m", stdout);
    put_cell(cols[j].head, j == ncols - 1 ? 0 : w[j], cols[j].right, 0);
    if (c->color) fputs("\033[0m", stdout);
    if (j < ncols - 1) fputs("  ", stdout);
  }
  fputc('\n', stdout);
  for (int i = 0; i < rows; i++) {
    for (int j = 0; j < ncols; j++) {
      const char *v = PQgetvalue(r, i, cols[j].col);
      const char *sgr = c->color && cols[j].color ? cols[j].color(v) : NULL;
      if (sgr) printf("\033[%sm", sgr);
      put_cell(v, j == ncols - 1 ? 0 : w[j], cols[j].right, j == ncols - 1 ? cut : 0);
      if (sgr) fputs("\033[0m", stdout);
      if (j < ncols - 1) fputs("  ", stdout);
    }
    fputc('\n', stdout);
  }
}

int cli_escape(char *out, size_t cap, size_t *n, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char tmp[8];
    const char *add = tmp;
    if (*p == '"') add = "\\\"";
    else if (*p == '\\') add = "\\\\";
    else if (*p == '\n') add = "\\n";
    else if (*p == '\r') add = "\\r";
    else if (*p == '\t') add = "\\t";
    else if (*p < 0x20 || *p == 0x7F) snprintf(tmp, sizeof tmp, "\\u%04x", *p);
    else tmp[0] = (char)*p, tmp[1] = 0;
    size_t len = strlen(add);
    if (*n + len >= cap) return -1;
    memcpy(out + *n, add, len + 1);
    *n += len;
  }
  return 0;
}

const char *cli_color_severity(const char *v) {
  return !strcmp(v, "critical") ? "1;31" : !strcmp(v, "warning") ? "33" : NULL;
}

const char *cli_color_state(const char *v) {
  if (!strcmp(v, "open")) return "1;31";
  if (!strcmp(v, "cleared")) return "32";
  if (!strcmp(v, "acknowledged")) return "36";
  if (!strcmp(v, "rectified")) return "34";
  if (!strcmp(v, "closed")) return "2";
  return NULL;
}

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0) return false;
  if (argv[*i][n] == '=') {
    *value = argv[*i] + n + 1;
    return true;
  }
  if (argv[*i][n] != 0) return false;
  if (*i + 1 >= argc) {
    fprintf(stderr, "chargewatch: %s needs a value\n", name);
    exit(CLI_EXIT_USAGE);
  }
  *value = argv[++*i];
  return true;
}
