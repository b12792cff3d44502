/* The test groups run by test_main.c. */
#ifndef ESPT_TESTS_H
#define ESPT_TESTS_H

void test_protocol(const char *vectors_path);
void test_device(void);
void test_pieces(const char *vectors_path);
void test_tflm_status(void);
void test_mlperf_tiny(void);

#endif
