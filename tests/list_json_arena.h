/* tests of lib/json_arena.c: cJSON trees cut from the per-thread arena */
TEST(json_arena_tree_and_release)
TEST(json_arena_outgrown_falls_back)
TEST(json_arena_nested_parse_uses_malloc)
TEST(json_arena_invalid_gives_back)
TEST(json_arena_threads_own_arenas)
TEST(json_arena_other_cjson_users)
