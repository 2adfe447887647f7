/*
 * test-sinkstate.c - the persisted health of a sink (obx_sink_state_get/set): absent means
 * up; down and paused are separate flags that never overwrite each other; the held time
 * adds up only while down or paused (overlaps counted once); no-op sets write nothing;
 * the state survives reopening, is readable by a second (tool) handle while the owner
 * runs, is refused on a read-only handle, and goes with the slot when a sink is purged;
 * a damaged record is reported by get and check and replaced by the next set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <lmdb.h>

#include "testutil.h"

static obx_store *open_flags(const char *dir, unsigned flags)
{
    obx_options o;
    obx_options_init(&o);
    o.flags = flags;
    obx_store *s = NULL;
    assert_int_equal(obx_open(dir, &o, &s, NULL), OBX_OK);
    return s;
}

/* A new owner store in a fresh directory (*dir, the caller removes it) with sink "hook". */
static obx_store *store_with_hook(const char *tag, char **dir, uint32_t *id)
{
    *dir = tmpdir_new(tag);
    assert_non_null(*dir);
    obx_store *s = open_flags(*dir, OBX_OPEN_OWNER);
    assert_int_equal(obx_sink_id(s, "hook", id, NULL), OBX_OK);
    return s;
}

static void set(obx_store *s, uint32_t id, int what, int on, int64_t now, int want_changed,
                obx_sink_state *st)
{
    obx_error err = {0};
    int changed = -1;
    assert_int_equal(obx_sink_state_set(s, id, what, on, now, on ? "why on" : "why off",
                                        "status 503", st, &changed, &err),
                     OBX_OK);
    assert_int_equal(changed, want_changed);
}

static void test_flags_and_held_time(void **state)
{
    (void)state;
    char *dir;
    uint32_t id;
    obx_store *s = store_with_hook("sinkstate", &dir, &id);
    obx_sink_state st;
    assert_int_equal(obx_sink_state_get(s, id, &st, NULL), OBX_OK);
    assert_false(st.down || st.paused || st.changes || st.held_ms || st.held_since_ms);
    assert_int_equal(obx_sink_held_ms(&st, 5000), 0);

    set(s, id, OBX_SINK_DOWN, 1, 1000, 1, &st); /* down at 1s */
    assert_true(st.down);
    assert_int_equal(st.down_since_ms, 1000);
    assert_string_equal(st.last_error, "status 503");
    assert_int_equal(obx_sink_held_ms(&st, 1500), 500);
    set(s, id, OBX_SINK_DOWN, 1, 1200, 0, &st); /* already down: nothing written */
    assert_int_equal(st.changes, 1);
    set(s, id, OBX_SINK_PAUSED, 1, 2000, 1, &st); /* paused too: the overlap counts once */
    assert_true(st.down && st.paused);
    set(s, id, OBX_SINK_DOWN, 0, 3000, 1, &st); /* up, still paused: still held */
    assert_false(st.down);
    assert_string_equal(st.last_error, "");
    assert_int_equal(obx_sink_held_ms(&st, 3500), 2500);
    set(s, id, OBX_SINK_PAUSED, 0, 4000, 1, &st); /* resumed: held 1s..4s */
    assert_int_equal(st.held_ms, 3000);
    assert_int_equal(st.held_since_ms, 0);
    assert_int_equal(obx_sink_held_ms(&st, 99000), 3000);
    assert_int_equal(st.changes, 4);
    assert_string_equal(st.why, "why off");

    /* a tool handle next to the owner reads and pauses; a read-only one is refused */
    obx_store *tool = open_flags(dir, 0);
    set(tool, id, OBX_SINK_PAUSED, 1, 5000, 1, &st);
    obx_close(tool);
    assert_int_equal(obx_sink_state_get(s, id, &st, NULL), OBX_OK);
    assert_true(st.paused);
    assert_int_equal(obx_sink_held_ms(&st, 6000), 4000);
    obx_close(s);

    s = open_flags(dir, OBX_OPEN_READONLY);
    obx_error err = {0};
    assert_int_equal(
        obx_sink_state_set(s, id, OBX_SINK_PAUSED, 0, 7000, NULL, NULL, NULL, NULL, &err),
        OBX_ERR_STATE);
    assert_int_equal(obx_sink_state_get(s, id, &st, NULL), OBX_OK); /* survived reopening */
    assert_true(st.paused);
    assert_int_equal(st.paused_since_ms, 5000);
    assert_int_equal(obx_sink_state_get(s, 0, &st, &err), OBX_ERR_INVALID);
    assert_int_equal(obx_sink_state_set(s, id, 7, 1, 1, NULL, NULL, NULL, NULL, &err),
                     OBX_ERR_INVALID);
    obx_close(s);

    /* purging the sink frees its slot and its health: the next sink starts up */
    s = open_flags(dir, OBX_OPEN_OWNER);
    obx_retire_counts rc;
    assert_int_equal(obx_sink_retire(s, id, OBX_RETIRE_PURGE, 0, &rc, NULL), OBX_OK);
    assert_true(rc.slot_freed);
    uint32_t id2;
    assert_int_equal(obx_sink_id(s, "other", &id2, NULL), OBX_OK);
    assert_int_equal(id2, id);
    assert_int_equal(obx_sink_state_get(s, id2, &st, NULL), OBX_OK);
    assert_false(st.paused || st.changes);
    obx_close(s);
    rm_rf(dir);
    free(dir);
}

/* A damaged record: get and check report it, set replaces it with a fresh one. */
static void test_corrupt_record(void **state)
{
    (void)state;
    char *dir;
    uint32_t id;
    obx_store *s = store_with_hook("sinkstate-bad", &dir, &id);
    obx_sink_state st;
    set(s, id, OBX_SINK_PAUSED, 1, 1000, 1, &st);
    obx_close(s);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 12), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    unsigned char k[6] = {'h',
                          ':',
                          (unsigned char)(id >> 24),
                          (unsigned char)(id >> 16),
                          (unsigned char)(id >> 8),
                          (unsigned char)id};
    MDB_val key = {sizeof k, k}, val;
    assert_int_equal(mdb_get(txn, meta, &key, &val), 0);
    unsigned char *copy = malloc(val.mv_size);
    memcpy(copy, val.mv_data, val.mv_size);
    copy[10] ^= 0x40; /* a flipped bit in since-time: the checksum catches it */
    MDB_val bad = {val.mv_size, copy};
    assert_int_equal(mdb_put(txn, meta, &key, &bad, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(copy);

    s = open_flags(dir, OBX_OPEN_OWNER);
    obx_error err = {0};
    assert_int_equal(obx_sink_state_get(s, id, &st, &err), OBX_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "health record"));
    size_t problems = 0;
    assert_int_equal(obx_check(s, NULL, NULL, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 1);
    set(s, id, OBX_SINK_PAUSED, 1, 2000, 1, &st); /* replaced by a fresh record */
    assert_int_equal(st.paused_since_ms, 2000);
    assert_int_equal(obx_check(s, NULL, NULL, &problems, NULL), OBX_OK);
    assert_int_equal(problems, 0);
    obx_close(s);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_and_held_time),
        cmocka_unit_test(test_corrupt_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
