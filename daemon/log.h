/* log.h - the daemon's diagnostic log on stderr (log.c). Any thread. */
#ifndef CW_LOG_H
#define CW_LOG_H

void cw_log_set_level(int level);
void cw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define CW_LOG_ERROR 0
#define CW_LOG_WARN 1
#define CW_LOG_INFO 2
#define CW_LOG_DEBUG 3

#endif
