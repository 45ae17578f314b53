/* tests of daemon/pipeline.c and daemon/worker.c on real threads (ring ->
 * decode -> detect -> reading and alert rings) */
TEST(pipeline_two_threads_exactly_once)
TEST(pipeline_control_reaches_owner)
TEST(pipeline_blind_stores_late_redelivery)
TEST(pipeline_inline_exactly_once)
TEST(pipeline_inline_control_without_messages)
TEST(pipeline_inline_sweep_without_messages)
TEST(pipeline_inline_backpressure)
TEST(pipeline_jpos_processed)
TEST(pipeline_lag_added_every_50ms)
TEST(pipeline_inline_lag_after_stop)
TEST(pipeline_threaded_lag_after_stop)
TEST(pipeline_inline_lag_added_while_idle)
