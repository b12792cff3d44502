/* A host program that runs the AOT engine over a file of inputs: the test harness and
 * the benchmark's instruction counter (not part of any firmware).
 *
 *   aot_run INPUTS OUTPUTS   INPUTS holds N input tensors back to back; OUTPUTS gets the
 *                            N output tensors. Exit status 0 on success. */
#include <stdio.h>
#include <stdlib.h>

#include "engine.h"

int main(int argc, char **argv)
{
    espt_model_info_t info;
    FILE *fin, *fout;
    uint8_t *in, *out;
    long count = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUTS OUTPUTS\n", argv[0]);
        return 2;
    }
    if (espt_engine_init(&info) != ESPT_STATUS_READY) {
        fprintf(stderr, "engine not ready (status %d)\n", info.status);
        return 1;
    }
    in = malloc(info.input.bytes);
    out = malloc(info.output.bytes);
    fin = fopen(argv[1], "rb");
    fout = fopen(argv[2], "wb");
    if (!in || !out || !fin || !fout) {
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 1;
    }
    while (fread(in, 1, info.input.bytes, fin) == info.input.bytes) {
        if (espt_engine_set_input(0, in, info.input.bytes) || espt_engine_invoke() ||
            espt_engine_get_output(0, out, info.output.bytes) ||
            fwrite(out, 1, info.output.bytes, fout) != info.output.bytes) {
            fprintf(stderr, "inference %ld failed\n", count);
            return 1;
        }
        ++count;
    }
    fclose(fin);
    if (fclose(fout) != 0) {
        return 1;
    }
    free(in);
    free(out);
    return 0;
}
