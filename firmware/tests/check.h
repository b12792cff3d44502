/* A tiny test harness: named cases, checks that report file:line, and the summary line
 * "N passed, N failed" (cases, not checks) that CI reads. */
#ifndef ESPT_CHECK_H
#define ESPT_CHECK_H

#include <stddef.h>
#include <stdint.h>

void check_begin(const char *name);
void check_end(void);
int check_summary(void); /* prints the summary line; returns the process exit status */

int check_true(int ok, const char *expr, const char *file, int line);
int check_u64(uint64_t a, uint64_t b, const char *ea, const char *eb, const char *file, int line);
int check_mem(const void *a, const void *b, size_t n, const char *ea, const char *eb,
              const char *file, int line);
int check_str(const char *a, const char *b, const char *ea, const char *eb, const char *file,
              int line);

#define CHECK(cond) check_true((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_EQ(a, b) check_u64((uint64_t)(a), (uint64_t)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_MEM(a, b, n) check_mem((a), (b), (n), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(a, b) check_str((a), (b), #a, #b, __FILE__, __LINE__)

/* Run a void(void) test function as one case. */
#define RUN(fn) do { check_begin(#fn); fn(); check_end(); } while (0)

#endif
