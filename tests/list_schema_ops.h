/* tests of schema/003_ops.sql: TEST(name) per line */
TEST(schema_ops_migrations_idempotent)
TEST(schema_ops_lifecycle_by_id_and_ref)
TEST(schema_ops_event_notify_and_refs)
TEST(schema_ops_timezones_from_offsets)
TEST(schema_ops_sessions_idempotent)
TEST(schema_ops_rollup_exact)
TEST(schema_ops_retention_drops_partitions)
