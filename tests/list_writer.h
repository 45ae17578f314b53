/* tests of daemon/writer.c's hand-offs (two threads, real PostgreSQL) */
TEST(writer_two_threads_handoffs)
TEST(writer_readings_only_sync)
TEST(writer_publish_to_store_exact)
