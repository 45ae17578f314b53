/* tests of lib/hist.c: TEST(name) per line */
TEST(hist_bucket_matches_bounds)
TEST(hist_local_add_exact)
TEST(hist_rows_match_copy_parse)
