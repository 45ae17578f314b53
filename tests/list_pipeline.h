/* tests of the two-thread hot path (ring -> decode -> detect -> COPY) */
TEST(pipeline_two_threads_exactly_once)
