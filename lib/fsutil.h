/* fsutil.h - file-system helpers. */
#ifndef CW_FSUTIL_H
#define CW_FSUTIL_H

/* mkdir -p with mode 0700 for every created level. 0, -ENAMETOOLONG
 * (longer than PATH_MAX) or -errno of the mkdir that failed. */
int cw_mkdir_p(const char *dir);

#endif
