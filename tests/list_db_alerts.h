/* tests of daemon/db_alerts.c (real PostgreSQL) */
TEST(db_alerts_repeat_rectify)
TEST(db_alerts_pipelined_chunks)
