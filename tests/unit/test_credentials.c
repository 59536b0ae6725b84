/* test_credentials.c - unit tests for auth/credentials.c: the credentials file
 * format (comments, blank lines, tabs, CRLF, default account), its errors
 * (malformed lines, duplicates, no keys, missing file) and lookups. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/credentials.h"

#define SECRET1 "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SECRET2 "s3cr3t+with/slashes=="

static int parse(const char *text, cred_table *t, err *e)
{
    err_clear(e);
    return cred_parse(text, strlen(text), "creds.txt", t, e);
}

/* Parses text expecting failure; checks the message and that no secret leaked. */
static void expect_error(const char *text, const char *needle)
{
    cred_table t = {0};
    err e;
    assert_int_equal(parse(text, &t, &e), -1);
    assert_int_equal(e.code, ERR_VALIDATION);
    if (!strstr(e.msg, needle)) fail_msg("message '%s' lacks '%s'", e.msg, needle);
    assert_null(strstr(e.msg, SECRET1));
    assert_null(strstr(e.msg, SECRET2));
    assert_int_equal(t.n, 0);
    assert_null(t.entries);
    cred_free(&t);
}

static void test_basic(void **state)
{
    cred_table t = {0};
    err e;
    assert_int_equal(parse("AKID2 " SECRET2 " acct-2\nAKID1 " SECRET1 "\n", &t, &e), 0);
    assert_int_equal(t.n, 2);
    /* Sorted by access key. */
    assert_string_equal(t.entries[0].access_key, "AKID1");
    assert_string_equal(t.entries[0].secret, SECRET1);
    assert_string_equal(t.entries[0].account, "default");
    assert_string_equal(t.entries[1].access_key, "AKID2");
    assert_string_equal(t.entries[1].secret, SECRET2);
    assert_string_equal(t.entries[1].account, "acct-2");
    cred_free(&t);
    assert_int_equal(t.n, 0);
    assert_null(t.entries);
    cred_free(&t); /* idempotent */
}

static void test_comments_blank_lines_tabs(void **state)
{
    const char *text = "# Meridian credentials\n"
                       "\n"
                       "   \t \n"
                       "   # indented comment AKIDX " SECRET1 "\n"
                       "\tAKID1\t" SECRET1 "\n"
                       "AKID2 \t  " SECRET2 " \t team_a.prod \t \n"
                       "#AKID3 secret\n"
                       "AKID3    secret3";
    cred_table t = {0};
    err e;
    assert_int_equal(parse(text, &t, &e), 0);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.entries[0].access_key, "AKID1");
    assert_string_equal(t.entries[0].account, "default");
    assert_string_equal(t.entries[1].access_key, "AKID2");
    assert_string_equal(t.entries[1].secret, SECRET2);
    assert_string_equal(t.entries[1].account, "team_a.prod");
    assert_string_equal(t.entries[2].access_key, "AKID3");
    assert_string_equal(t.entries[2].secret, "secret3");
    assert_null(cred_find(&t, "AKIDX", 5));
    cred_free(&t);
}

static void test_crlf_and_bom(void **state)
{
    const char *text = "\xEF\xBB\xBF# comment\r\n"
                       "\r\n"
                       "AKID1 " SECRET1 " acct1\r\n"
                       "AKID2 " SECRET2 "\r\n";
    cred_table t = {0};
    err e;
    assert_int_equal(parse(text, &t, &e), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.entries[0].account, "acct1");
    assert_string_equal(t.entries[1].secret, SECRET2); /* no '\r' kept */
    assert_string_equal(t.entries[1].account, "default");
    cred_free(&t);
}

static void test_duplicates(void **state)
{
    expect_error("# c\nAKID1 " SECRET1 "\nAKID2 " SECRET2 "\nAKID1 other acct\n",
                 "creds.txt:4: duplicate access key id 'AKID1' (first defined on line 2)");
    /* Same key, same secret: still a duplicate. */
    expect_error("A " SECRET1 "\r\nA " SECRET1 "\r\n", "creds.txt:2: duplicate access key id 'A'");
}

static void test_malformed_lines(void **state)
{
    expect_error("AKID1\n", "creds.txt:1: missing secret access key");
    expect_error("AKID1 " SECRET1 "\n   AKID2\t\n", "creds.txt:2: missing secret access key");
    expect_error("AKID1 " SECRET1 " acct extra\n", "creds.txt:1: too many fields");
    expect_error("AKID1 " SECRET1 " a b c d e\n", "creds.txt:1: too many fields");
    expect_error("\n\nAKID1 " SECRET1 " bad!account\n", "creds.txt:3: invalid account name");
    expect_error("AKID1 " SECRET2 " acct/x\n", "creds.txt:1: invalid account name");
    char longacct[100];
    memset(longacct, 'a', 65);
    longacct[65] = '\0';
    char text[256];
    snprintf(text, sizeof(text), "AKID1 " SECRET1 " %s\n", longacct);
    expect_error(text, "creds.txt:1: invalid account name");
    longacct[64] = '\0'; /* 64 is the maximum */
    snprintf(text, sizeof(text), "AKID1 " SECRET1 " %s\n", longacct);
    cred_table t = {0};
    err e;
    assert_int_equal(parse(text, &t, &e), 0);
    assert_int_equal(strlen(t.entries[0].account), 64);
    cred_free(&t);

    expect_error("AK/ID " SECRET1 "\n", "creds.txt:1: invalid access key id");
    expect_error("AK,ID " SECRET1 "\n", "creds.txt:1: invalid access key id");
    expect_error("AKID\xC3\xA9 " SECRET1 "\n", "creds.txt:1: invalid access key id");
    expect_error("AKID1 s\x01"
                 "cret\n",
                 "creds.txt:1: invalid secret access key");
    expect_error("AKID1 " SECRET1 "\vx\n", "creds.txt:1: invalid secret access key");
}

static void test_no_keys(void **state)
{
    expect_error("", "creds.txt: no access keys defined");
    expect_error("# only a comment\n\n  \t\r\n", "creds.txt: no access keys defined");
}

static void test_nul_byte(void **state)
{
    static const char text[] = "AKID1 " SECRET1 "\nAKID2 x\0y\n";
    cred_table t = {0};
    err e;
    assert_int_equal(cred_parse(text, sizeof(text) - 1, "mem", &t, &e), -1);
    assert_string_equal(e.msg, "mem:2: contains a NUL byte");
    assert_null(strstr(e.msg, SECRET1));
}

static char *write_temp(const char *contents)
{
    char *path = strdup("/tmp/meridian_test_creds_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(contents);
    assert_int_equal(write(fd, contents, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_load_file(void **state)
{
    char *path = write_temp("# keys\r\nAKID1 " SECRET1 " acct1\r\n\r\nAKID2\t" SECRET2 "\r\n");
    cred_table t = {0};
    err e;
    err_clear(&e);
    assert_int_equal(cred_load(path, &t, &e), 0);
    assert_int_equal(t.n, 2);
    const cred_entry *c = cred_find(&t, "AKID2", 5);
    assert_non_null(c);
    assert_string_equal(c->secret, SECRET2);
    assert_string_equal(c->account, "default");
    cred_free(&t);
    unlink(path);
    free(path);
}

static void test_load_file_errors_name_file(void **state)
{
    char *path = write_temp("AKID1 " SECRET1 "\nAKID1 " SECRET2 "\n");
    cred_table t = {0};
    err e;
    assert_int_equal(cred_load(path, &t, &e), -1);
    char want[256];
    snprintf(want, sizeof(want), "%s:2: duplicate access key id 'AKID1'", path);
    if (!strstr(e.msg, want)) fail_msg("message '%s' lacks '%s'", e.msg, want);
    assert_null(strstr(e.msg, SECRET1));
    assert_null(strstr(e.msg, SECRET2));
    unlink(path);
    free(path);
}

static void test_missing_file(void **state)
{
    cred_table t = {0};
    err e;
    err_clear(&e);
    assert_int_equal(cred_load("/nonexistent/dir/creds.txt", &t, &e), -1);
    assert_int_not_equal(e.code, ERR_NONE);
    assert_non_null(strstr(e.msg, "/nonexistent/dir/creds.txt"));
    assert_non_null(strstr(e.msg, "No such file or directory"));
    assert_int_equal(t.n, 0);
    assert_null(t.entries);

    /* A directory is not a readable credentials file either. */
    assert_int_equal(cred_load("/tmp", &t, &e), -1);
    assert_non_null(strstr(e.msg, "/tmp"));
}

static void test_find(void **state)
{
    cred_table t = {0};
    err e;
    assert_int_equal(parse("AK " SECRET1 "\nAKID " SECRET1 "\nAKIDZ " SECRET2 "\nB x\n", &t, &e),
                     0);
    const char *buf = "AKIDZZZ";
    assert_string_equal(cred_find(&t, buf, 2)->access_key, "AK");
    assert_string_equal(cred_find(&t, buf, 4)->access_key, "AKID");
    assert_string_equal(cred_find(&t, buf, 5)->access_key, "AKIDZ");
    assert_null(cred_find(&t, buf, 6));
    assert_null(cred_find(&t, buf, 1));
    assert_null(cred_find(&t, buf, 0));
    assert_string_equal(cred_find(&t, "B", 1)->secret, "x");
    assert_null(cred_find(&t, "C", 1));
    assert_null(cred_find(NULL, "B", 1));
    cred_table empty = {0};
    assert_null(cred_find(&empty, "B", 1));
    cred_free(&t);
}

static void test_many_keys(void **state)
{
    enum { N = 2000 };
    size_t cap = (size_t)N * 40;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (int i = N - 1; i >= 0; i--)
        len += (size_t)snprintf(text + len, cap - len, "KEY%05d secret%d acct%d\n", i, i, i % 7);
    cred_table t = {0};
    err e;
    assert_int_equal(cred_parse(text, len, "big", &t, &e), 0);
    assert_int_equal(t.n, N);
    for (int i = 0; i < N; i++) {
        char key[32], secret[32];
        snprintf(key, sizeof(key), "KEY%05d", i);
        snprintf(secret, sizeof(secret), "secret%d", i);
        const cred_entry *c = cred_find(&t, key, strlen(key));
        assert_non_null(c);
        assert_string_equal(c->secret, secret);
    }
    cred_free(&t);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_comments_blank_lines_tabs),
        cmocka_unit_test(test_crlf_and_bom),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_no_keys),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_file_errors_name_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
