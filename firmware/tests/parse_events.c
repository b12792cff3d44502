/* The core's parser as a filter, for the differential test against the host's
 * (tests/test_parser_differential.py). Each stdin line is one stream:
 *
 *     MAX_PAYLOAD CHUNKS
 *
 * CHUNKS as in docs/protocol-vectors.txt (hex chunks joined by ',', 'T' a time-out; may
 * be empty). For each line one stdout line, flushed: the events in the vectors' EVENTS
 * syntax ("-" when none). Each chunk is pushed whole and drained, as the device loop
 * does. A bad line is reported on stderr and ends the program (exit 1); MAX_PAYLOAD above
 * ESPT_MAX_PAYLOAD is refused (the core would clamp it, the host's parser does not). */
#include <stdio.h>
#include <string.h>

#include "protocol.h"
#include "vectors.h"

#define LINE_BYTES (1u << 20)

static char line[LINE_BYTES];
static uint8_t chunk[LINE_BYTES / 2];
static char events[4 * LINE_BYTES];
static espt_parser_t parser;

static int fail(unsigned long lineno, const char *why)
{
    fprintf(stderr, "parse-events: stdin line %lu: %s\n", lineno, why);
    return 1;
}

int main(void)
{
    unsigned long lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        size_t len = strlen(line);
        unsigned long max_payload = 0;
        char *s = line;
        lineno++;
        if (len == sizeof line - 1 && line[len - 1] != '\n')
            return fail(lineno, "line too long");
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (*s < '0' || *s > '9')
            return fail(lineno, "expected MAX_PAYLOAD CHUNKS");
        while (*s >= '0' && *s <= '9' && max_payload <= 0xFFFFu)
            max_payload = max_payload * 10 + (unsigned long)(*s++ - '0');
        if (max_payload > ESPT_MAX_PAYLOAD)
            return fail(lineno, "MAX_PAYLOAD above ESPT_MAX_PAYLOAD");
        if (*s == ' ')
            s++;
        else if (*s != '\0')
            return fail(lineno, "expected MAX_PAYLOAD CHUNKS");
        if (stream_run(&parser, (uint16_t)max_payload, s, 0, chunk, sizeof chunk, events,
                       sizeof events) != 0)
            return fail(lineno, "malformed chunk, or too many events");
        if (puts(events) < 0 || fflush(stdout) != 0)
            return 1;
    }
    return ferror(stdin) ? fail(lineno + 1, "read error") : 0;
}
