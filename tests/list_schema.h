/* tests of the schema through the writer, against a real PostgreSQL */
TEST(schema_migrations_idempotent)
TEST(schema_partitions_ahead)
TEST(schema_default_partition_moves)
TEST(schema_rows_stored_once)
TEST(schema_refused_rows_isolated)
TEST(schema_alert_rows_per_event)
TEST(schema_ack_close_notify)
