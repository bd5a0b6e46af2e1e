/* Run an exported tutorial Net from C: reads the weights and one raw float32 input, prints the outputs.

   Export the model, build and run (from the repository root):
     graphnn export tools/tutorial_net.py:Net --input-shape 1,1,32,32 --name lenet -o lenet_export
     cc -O2 -I lenet_export examples/run_lenet.c -L lenet_export -llenet -Wl,-rpath,"$PWD/lenet_export" -o run_lenet
     ./run_lenet lenet_export/weights.bin input.f32      (input.f32: 1*1*32*32 little-endian float32 values)
*/
#include <stdio.h>
#include <stdlib.h>

#include "lenet.h"

/* Read exactly `nbytes` from `path` into a new buffer, or NULL with a message. */
static void *read_file(const char *path, long nbytes) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    void *buf = malloc(nbytes > 0 ? (size_t)nbytes : 1);
    long got = buf ? (long)fread(buf, 1, (size_t)nbytes, f) : -1;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != nbytes || extra) {
        fprintf(stderr, "%s: expected %ld bytes\n", path, nbytes);
        free(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s WEIGHTS_FILE INPUT_FILE\n", argv[0]);
        return 2;
    }
    void *weights = read_file(argv[1], LENET_WEIGHTS_BYTES);
    float *input = read_file(argv[2], LENET_INPUT_X_SIZE * (long)sizeof(float));
    if (!weights || !input)
        return 1;
    void *ctx = lenet_init(weights, LENET_WEIGHTS_BYTES);
    free(weights); /* the context holds its own copy */
    if (!ctx) {
        fprintf(stderr, "lenet_init failed\n");
        return 1;
    }
    float output[LENET_OUTPUT_OUTPUT_SIZE];
    if (lenet_forward(ctx, input, output) != 0) {
        fprintf(stderr, "lenet_forward failed\n");
        return 1;
    }
    for (int i = 0; i < LENET_OUTPUT_OUTPUT_SIZE; i++)
        printf("%.6f\n", output[i]);
    lenet_free(ctx);
    free(input);
    return 0;
}
