#include "check.h"

#include <stdio.h>
#include <string.h>

static const char *current = "?";
static int case_failures;
static int passed, failed;

void check_begin(const char *name)
{
    current = name;
    case_failures = 0;
}

void check_end(void)
{
    if (case_failures)
        failed++;
    else
        passed++;
}

int check_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

static int fail(const char *file, int line)
{
    case_failures++;
    fprintf(stderr, "FAIL %s (%s:%d): ", current, file, line);
    return 0;
}

int check_true(int ok, const char *expr, const char *file, int line)
{
    if (ok)
        return 1;
    fail(file, line);
    fprintf(stderr, "%s\n", expr);
    return 0;
}

int check_u64(uint64_t a, uint64_t b, const char *ea, const char *eb, const char *file, int line)
{
    if (a == b)
        return 1;
    fail(file, line);
    fprintf(stderr, "%s == %s: %llu != %llu\n", ea, eb, (unsigned long long)a,
            (unsigned long long)b);
    return 0;
}

int check_mem(const void *a, const void *b, size_t n, const char *ea, const char *eb,
              const char *file, int line)
{
    const unsigned char *x = a, *y = b;
    size_t i;
    if (memcmp(a, b, n) == 0)
        return 1;
    for (i = 0; i < n && x[i] == y[i]; i++)
        ;
    fail(file, line);
    fprintf(stderr, "%s == %s (%zu bytes): first difference at %zu: %02x != %02x\n", ea, eb, n,
            i, x[i], y[i]);
    return 0;
}

int check_str(const char *a, const char *b, const char *ea, const char *eb, const char *file,
              int line)
{
    if (strcmp(a, b) == 0)
        return 1;
    fail(file, line);
    fprintf(stderr, "%s == %s: \"%s\" != \"%s\"\n", ea, eb, a, b);
    return 0;
}
