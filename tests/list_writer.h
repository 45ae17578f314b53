/* tests of daemon/writer.c's hand-offs (two threads, real PostgreSQL) */
TEST(writer_two_threads_handoffs)
