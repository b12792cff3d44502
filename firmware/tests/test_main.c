/* C unit tests of the firmware core and the TFLite-Micro engine's status decision. Usage: test_unit PATH/TO/protocol-vectors.txt
 * Last line of output: "N passed, N failed" (test cases). */
#include <stdio.h>

#include "check.h"
#include "tests.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s docs/protocol-vectors.txt\n", argv[0]);
        return 2;
    }
    test_protocol(argv[1]);
    test_device();
    test_pieces(argv[1]);
    test_tflm_status();
    test_mlperf_tiny();
    return check_summary();
}
