/* The MLPerf Tiny benchmark API, device side (mlperf_tiny.h, docs/mlperf-tiny.md).
 * Every buffer is static and bounded; nothing the host sends is trusted. No printf: the
 * replies are built by hand, floats in the API's "%0.3f" correctly rounded. */
#include "mlperf_tiny.h"

#include <string.h>

#include "board.h"
#include "engine.h"

#ifndef ESPT_MLPERF_POLL_MS
#define ESPT_MLPERF_POLL_MS 10u
#endif
#define MAX_TOKENS 4

static espt_model_info_t model;
static const char *task;                      /* "ic01", ... or "unknown" */
static int anomaly_task;                      /* ad01: results is the anomaly score */

static char cmd[ESPT_MLPERF_CMD_SIZE + 1];
static size_t cmd_len;
static int cmd_overflow;

static uint8_t db[ESPT_MLPERF_DB_BYTES];
static size_t db_size;                        /* N of the last `db load N` */
static size_t db_pos;                         /* bytes loaded since */
/* The input tensor when db holds float32 values for an 8-bit input (the reference
 * anomaly-detection form): quantized here. */
static uint8_t staged[ESPT_MLPERF_INPUT_XOR ? ESPT_MLPERF_DB_BYTES : ESPT_MLPERF_DB_BYTES / 4u];
static uint8_t out[ESPT_MLPERF_OUT_BYTES];
static int have_results;

static uint8_t rx[ESPT_MLPERF_RX_CHUNK];
static uint8_t tx[ESPT_MLPERF_TX_BYTES];
static size_t tx_len;
static int link_failed;

/* ---- output: a small buffer flushed to the board ------------------------------ */

static void flush(void)
{
    if (tx_len > 0 && !link_failed && espt_board_write(tx, tx_len) < 0)
        link_failed = 1;
    tx_len = 0;
}

static void put_char(char c)
{
    if (tx_len == sizeof tx)
        flush();
    tx[tx_len++] = (uint8_t)c;
}

static void put_str(const char *s)
{
    while (*s)
        put_char(*s++);
}

/* Host-supplied text echoed back: printable ASCII only, so a reply stays one line. */
static void put_text(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        put_char(s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?');
}

static void put_u64(uint64_t v)
{
    char digits[21];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v && i > 0);
    while (i < sizeof digits)
        put_char(digits[i++]);
}

static void put_hex8(uint8_t v)
{
    static const char hex[] = "0123456789abcdef";
    put_char(hex[v >> 4]);
    put_char(hex[v & 0x0Fu]);
}

static void end_line(void)
{
    put_str("\r\n");
}

static void line(const char *s)
{
    put_str(s);
    end_line();
}

static void error_begin(void)
{
    put_str("e-[");
}

static void error_end(void)
{
    put_str("]\r\n");
}

static void error_line(const char *s)
{
    error_begin();
    put_str(s);
    error_end();
}

/* |v| >= 2^63 / 1000, an integer: its exact decimal digits (mantissa doubled exponent
 * times in a decimal array), then ".000". */
static void put_big(uint32_t bits)
{
    uint8_t d[40]; /* FLT_MAX has 39 digits */
    uint32_t m = (bits & 0x7FFFFFu) | 0x800000u;
    int e = (int)((bits >> 23) & 0xFFu) - 150, n = 0, i;
    while (m) {
        d[n++] = (uint8_t)(m % 10u);
        m /= 10u;
    }
    for (; e > 0; e--) {
        unsigned carry = 0;
        for (i = 0; i < n; i++) {
            unsigned x = (unsigned)d[i] * 2u + carry;
            d[i] = (uint8_t)(x % 10u);
            carry = x / 10u;
        }
        if (carry && n < (int)sizeof d)
            d[n++] = (uint8_t)carry;
    }
    while (n > 0)
        put_char((char)('0' + d[--n]));
    put_str(".000");
}

/* v as C's printf("%0.3f") prints it (round half to even on the exact value). v * 1000
 * is exact in a double (24 + 10 significant bits). */
static void put_float3(float v)
{
    uint32_t bits;
    double x;
    uint64_t t;
    double frac;
    memcpy(&bits, &v, sizeof bits);
    if (v != v) {
        put_str((bits >> 31) ? "-nan" : "nan");
        return;
    }
    if (bits >> 31)
        put_char('-');
    x = (double)v * 1000.0;
    if (x < 0)
        x = -x;
    if (((bits >> 23) & 0xFFu) == 0xFFu) {
        put_str("inf");
        return;
    }
    if (x >= 9223372036854775808.0) {
        put_big(bits);
        return;
    }
    t = (uint64_t)x;
    frac = x - (double)t;
    if (frac > 0.5 || (frac == 0.5 && (t & 1u)))
        t++;
    put_u64(t / 1000u);
    put_char('.');
    put_char((char)('0' + (int)(t / 100u % 10u)));
    put_char((char)('0' + (int)(t / 10u % 10u)));
    put_char((char)('0' + (int)(t % 10u)));
}

size_t espt_mlperf_float3(float v, char *buf)
{
    size_t n;
    int failed = link_failed;
    flush();
    link_failed = 1; /* capture, do not send */
    put_float3(v);
    n = tx_len;
    memcpy(buf, tx, n);
    buf[n] = '\0';
    tx_len = 0;
    link_failed = failed;
    return n;
}

static void put_timestamp(uint64_t micros)
{
    put_str("m-lap-us-");
    put_u64(micros);
    end_line();
}

/* ---- the model ------------------------------------------------------------------ */

static uint32_t dtype_size(uint8_t dtype)
{
    switch (dtype) {
    case ESPT_DTYPE_FLOAT32: return 4;
    case ESPT_DTYPE_INT16: return 2;
    case ESPT_DTYPE_UINT8:
    case ESPT_DTYPE_INT8: return 1;
    default: return 0;
    }
}

/* Elements of a tensor whose dtype, rank and bytes agree, else 0. */
static uint32_t elements(const espt_tensor_info_t *t)
{
    uint64_t n = 1;
    uint32_t size = dtype_size(t->dtype);
    int i;
    if (size == 0 || t->rank < 1 || t->rank > 4)
        return 0;
    for (i = 0; i < t->rank; i++) {
        n *= t->dims[i];
        if (n > 0xFFFFFFFFu / 4u)
            return 0;
    }
    return n * size == t->bytes ? (uint32_t)n : 0;
}

static int dims_are(const espt_tensor_info_t *t, uint16_t h, uint16_t w, uint16_t c)
{
    return t->rank == 4 && t->dims[0] == 1 && t->dims[1] == h && t->dims[2] == w
           && t->dims[3] == c;
}

/* The benchmark task the model stands for, from its input (the four reference models'
 * shapes), unless the build names it. */
static const char *guess_task(void)
{
#ifdef ESPT_MLPERF_MODEL
    return ESPT_MLPERF_MODEL;
#else
    const espt_tensor_info_t *in = &model.input;
    if (dims_are(in, 32, 32, 3))
        return "ic01";
    if (dims_are(in, 49, 10, 1))
        return "kws01";
    if (dims_are(in, 96, 96, 3))
        return "vww01";
    if (elements(in) == 640u && elements(&model.output) == 640u)
        return "ad01";
    return "unknown";
#endif
}

static int is_8bit(uint8_t dtype)
{
    return dtype == ESPT_DTYPE_INT8 || dtype == ESPT_DTYPE_UINT8;
}

/* Bytes `db load` may announce: the input tensor's, or four per element (float32
 * values) for an 8-bit input. */
static size_t max_load(void)
{
    size_t n = model.input.bytes;
    if (is_8bit(model.input.dtype) && elements(&model.input) > 0)
        n = (size_t)model.input.bytes * 4u;
    return n < sizeof db ? n : sizeof db;
}

static float value_at(const uint8_t *p, uint8_t dtype, uint32_t i, float scale, int32_t zp)
{
    switch (dtype) {
    case ESPT_DTYPE_FLOAT32: {
        float f;
        memcpy(&f, p + 4u * i, sizeof f);
        return f;
    }
    case ESPT_DTYPE_INT16: {
        int16_t q;
        memcpy(&q, p + 2u * i, sizeof q);
        return (float)((int32_t)q - zp) * scale;
    }
    case ESPT_DTYPE_UINT8:
        return (float)((int32_t)p[i] - zp) * scale;
    default:
        return (float)((int32_t)(int8_t)p[i] - zp) * scale;
    }
}

/* round(value / scale) + zero_point, half away from zero, clamped to the dtype. */
static uint8_t quantize8(float value, float scale, int32_t zp, uint8_t dtype)
{
    float r = value / scale;
    double d = (double)r;
    int64_t q;
    int64_t lo = dtype == ESPT_DTYPE_INT8 ? -128 : 0;
    int64_t hi = dtype == ESPT_DTYPE_INT8 ? 127 : 255;
    if (d != d)
        d = 0.0;
    if (d > 1e9)
        d = 1e9;
    if (d < -1e9)
        d = -1e9;
    q = d >= 0 ? (int64_t)(d + 0.5) : -(int64_t)(-d + 0.5);
    q += zp;
    q = q < lo ? lo : q > hi ? hi : q;
    return (uint8_t)(int8_t)q;
}

/* ---- commands -------------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t n;
} token_t;

static int token_is(const token_t *t, const char *word)
{
    return t->n == strlen(word) && memcmp(t->s, word, t->n) == 0;
}

/* A decimal count, at most ESPT_MLPERF_MAX_COUNT; -1 if it is not one. */
static long parse_count(const token_t *t)
{
    uint32_t v = 0;
    size_t i;
    if (t->n == 0 || t->n > 9)
        return -1;
    for (i = 0; i < t->n; i++) {
        if (t->s[i] < '0' || t->s[i] > '9')
            return -1;
        v = v * 10u + (uint32_t)(t->s[i] - '0');
    }
    return v > ESPT_MLPERF_MAX_COUNT ? -1 : (long)v;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void cmd_help(void)
{
    line(ESPT_MLPERF_PROFILE);
    line("");
    line("help         : this text");
    line("name         : the device's name (m-name-dut-[...])");
    line("timestamp    : the microsecond timer (m-lap-us-T)");
    line("profile      : the firmware and the model (m-profile-[...], m-model-[...])");
    line("db load N    : expect N bytes of input");
    line("db HH[HH]*   : load hex bytes until N are in");
    line("db print     : the loaded bytes in hex");
    line("infer N [W=10]: load the input, W warm-up then N timed inferences");
    line("results      : the last inference's output as floats");
}

static void db_load(const token_t *arg)
{
    long n = parse_count(arg);
    size_t limit = max_load();
    if (arg->n == 0) {
        error_line("Command 'db load' requires the # of bytes");
        return;
    }
    if (n <= 0) {
        error_begin();
        put_str("Command 'db load' needs a byte count above 0, not '");
        put_text(arg->s, arg->n);
        put_char('\'');
        error_end();
        return;
    }
    if ((size_t)n > limit) {
        error_begin();
        put_str("db load ");
        put_u64((uint64_t)n);
        put_str(" exceeds the input, at most ");
        put_u64(limit);
        put_str(" bytes");
        error_end();
        return;
    }
    db_size = (size_t)n;
    db_pos = 0;
    memset(db, 0, db_size);
    put_str("m-[Expecting ");
    put_u64(db_size);
    put_str(" bytes]");
    end_line();
}

static void db_print(void)
{
    size_t i;
    for (i = 0; i < db_size; i++) {
        if (i % 8u == 0)
            put_str("m-buffer-");
        put_hex8(db[i]);
        if ((i + 1) % 8u == 0 || i + 1 == db_size)
            end_line();
        else
            put_char('-');
    }
}

static void db_hex(const token_t *hex)
{
    size_t i;
    if (db_size == 0) {
        error_line("db HEX needs a 'db load N' first");
        return;
    }
    if (db_pos == db_size) {
        error_begin();
        put_str("All ");
        put_u64(db_size);
        put_str(" bytes are loaded; 'db load N' starts again");
        error_end();
        return;
    }
    if (hex->n & 1u) {
        error_line("Insufficent number of hex digits");
        return;
    }
    for (i = 0; i < hex->n; i += 2) {
        int hi = hex_digit(hex->s[i]);
        int lo = hex_digit(hex->s[i + 1]);
        if (hi < 0 || lo < 0) {
            error_begin();
            put_str("Invalid hex digit '");
            put_text(hex->s + i, 2);
            put_char('\'');
            error_end();
            return;
        }
        db[db_pos++] = (uint8_t)(hi << 4 | lo);
        if (db_pos == db_size) {
            line("m-load-done"); /* the rest of the digits is disregarded, as the API does */
            return;
        }
    }
}

static void cmd_db(const token_t *tok, int n_tok)
{
    if (n_tok < 2) {
        error_line("Command 'db' requires a subcommand");
    } else if (token_is(&tok[1], "load")) {
        token_t none = {"", 0};
        db_load(n_tok > 2 ? &tok[2] : &none);
    } else if (token_is(&tok[1], "print")) {
        db_print();
    } else {
        db_hex(&tok[1]);
    }
}

static void not_ready(void)
{
#define ESPT_MLPERF_STATUS_(name, value, text) case ESPT_STATUS_##name: put_str(text); break;
    error_begin();
    put_str("Model not ready: ");
    switch (model.status) {
    ESPT_SPEC_STATUSES(ESPT_MLPERF_STATUS_)
    default: put_str("status "); put_u64(model.status); break;
    }
#undef ESPT_MLPERF_STATUS_
    if (model.detail[0]) {
        put_str(": ");
        put_text(model.detail, strlen(model.detail)); /* terminated by init */
    }
    error_end();
}

/* The input tensor from the db buffer, or NULL (after an e-[...] line). */
static const uint8_t *input_tensor(void)
{
    uint32_t n = elements(&model.input);
    uint32_t i;
    if (db_pos != db_size || db_size == 0) {
        error_begin();
        put_str("Input incomplete: ");
        put_u64(db_pos);
        put_str(" of ");
        put_u64(db_size);
        put_str(" bytes loaded");
        error_end();
        return NULL;
    }
    if (db_size == model.input.bytes && ESPT_MLPERF_INPUT_XOR == 0u)
        return db;
    if (db_size == model.input.bytes && db_size <= sizeof staged) {
        for (i = 0; i < db_size; i++)
            staged[i] = (uint8_t)(db[i] ^ ESPT_MLPERF_INPUT_XOR);
        return staged;
    }
    if (is_8bit(model.input.dtype) && n > 0 && db_size == 4u * (size_t)n && n <= sizeof staged) {
        for (i = 0; i < n; i++)
            staged[i] = quantize8(value_at(db, ESPT_DTYPE_FLOAT32, i, 1.0f, 0),
                                  model.input.scale, model.input.zero_point, model.input.dtype);
        return staged;
    }
    error_begin();
    put_str("Input has ");
    put_u64(db_size);
    put_str(" bytes; the model takes ");
    put_u64(model.input.bytes);
    if (is_8bit(model.input.dtype))
        put_str(" (or 4 per element as float32)");
    error_end();
    return NULL;
}

/* One inference from `in`; 0, or -1 after an e-[...] line. The input is set before
 * every inference: an engine may reuse the input tensor's memory. */
static int infer_once(const uint8_t *in)
{
    if (espt_engine_set_input(0, in, model.input.bytes) != 0 || espt_engine_invoke() != 0) {
        have_results = 0;
        error_line("Inference failed");
        return -1;
    }
    espt_board_idle(); /* feeds a watchdog; the timed windows last seconds */
    return 0;
}

static void cmd_results(void)
{
    uint32_t n = elements(&model.output);
    uint32_t i;
    if (!have_results) {
        error_line("No results: run 'infer N W' first");
        return;
    }
    if (espt_engine_get_output(0, out, model.output.bytes) != 0) {
        error_line("Reading the output failed");
        return;
    }
    put_str("m-results-[");
    if (anomaly_task && n == elements(&model.input)) {
        /* The anomaly score: mean squared error between the output and the input. */
        float sum = 0.0f;
        int floats_in = db_size != model.input.bytes;
        for (i = 0; i < n; i++) {
            float x = floats_in ? value_at(db, ESPT_DTYPE_FLOAT32, i, 1.0f, 0)
                                : value_at(db, model.input.dtype, i, model.input.scale,
                                           model.input.zero_point);
            float d = value_at(out, model.output.dtype, i, model.output.scale,
                               model.output.zero_point) - x;
            volatile float sq = d * d; /* no fused multiply-add: the host's sum is the same */
            sum += sq;
        }
        put_float3(sum / (float)n);
    } else {
        for (i = 0; i < n; i++) {
            if (i > 0)
                put_char(',');
            put_float3(value_at(out, model.output.dtype, i, model.output.scale,
                                model.output.zero_point));
        }
    }
    put_char(']');
    end_line();
}

static void cmd_infer(const token_t *tok, int n_tok)
{
    long n = 1, w = 10; /* the API's defaults when they are left out */
    const uint8_t *in;
    uint64_t c0, c1;
    long i;
    if (n_tok > 1) {
        n = parse_count(&tok[1]);
        if (n <= 0) {
            error_line("Inference iterations must be >0");
            return;
        }
    }
    if (n_tok > 2) {
        w = parse_count(&tok[2]);
        if (w < 0) {
            error_line("Inference warmup must be >=0");
            return;
        }
    }
    if (model.status != ESPT_STATUS_READY || elements(&model.input) == 0
        || elements(&model.output) == 0 || model.output.bytes > sizeof out) {
        not_ready();
        return;
    }
    in = input_tensor();
    if (in == NULL)
        return;
    put_str("m-warmup-start-");
    put_u64((uint64_t)w);
    end_line();
    for (i = 0; i < w; i++)
        if (infer_once(in) != 0)
            return;
    line("m-warmup-done");
    put_str("m-infer-start-");
    put_u64((uint64_t)n);
    end_line();
    /* As the API does it: the timestamp is taken, then printed, inside the window. */
    put_timestamp(espt_board_micros());
    flush();
    c0 = espt_board_cycles();
    for (i = 0; i < n; i++)
        if (infer_once(in) != 0)
            return;
    c1 = espt_board_cycles();
    put_timestamp(espt_board_micros());
    /* esptiny's addition: the board's cycle counter over the N inferences (retired
     * instructions on the emulated core). The official runner ignores the line. */
    put_str("m-infer-cycles-");
    put_u64(c1 - c0);
    end_line();
    line("m-infer-done");
    have_results = 1;
    cmd_results();
}

static void cmd_profile(void)
{
    line("m-profile-[" ESPT_MLPERF_PROFILE "]");
    put_str("m-model-[");
    put_str(task);
    put_char(']');
    end_line();
}

/* Split cmd[0..len) on spaces into at most MAX_TOKENS tokens; returns the count. */
static int tokenize(token_t *tok)
{
    int n = 0;
    size_t i = 0, start;
    while (i < cmd_len && n < MAX_TOKENS) {
        while (i < cmd_len && cmd[i] == ' ')
            i++;
        if (i == cmd_len)
            break;
        start = i;
        while (i < cmd_len && cmd[i] != ' ')
            i++;
        tok[n].s = cmd + start;
        tok[n].n = i - start;
        n++;
    }
    return n;
}

static void run_command(void)
{
    token_t tok[MAX_TOKENS];
    int n_tok;
    if (cmd_overflow) {
        error_begin();
        put_str("Command longer than ");
        put_u64(ESPT_MLPERF_CMD_SIZE);
        put_str(" characters");
        error_end();
    } else {
        n_tok = tokenize(tok);
        if (n_tok == 0) {
            error_line("Unknown command: ");
        } else if (token_is(&tok[0], "name")) {
            line("m-name-dut-[" ESPT_MLPERF_VENDOR "]");
        } else if (token_is(&tok[0], "timestamp")) {
            put_timestamp(espt_board_micros());
        } else if (token_is(&tok[0], "profile")) {
            cmd_profile();
        } else if (token_is(&tok[0], "help")) {
            cmd_help();
        } else if (token_is(&tok[0], "db")) {
            cmd_db(tok, n_tok);
        } else if (token_is(&tok[0], "infer")) {
            cmd_infer(tok, n_tok);
        } else if (token_is(&tok[0], "results")) {
            cmd_results();
        } else {
            error_begin();
            put_str("Unknown command: ");
            put_text(tok[0].s, tok[0].n);
            error_end();
        }
    }
    line("m-ready");
    flush();
    cmd_len = 0;
    cmd_overflow = 0;
}

/* ---- the loop ------------------------------------------------------------------- */

int espt_mlperf_feed(const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n && !link_failed; i++) {
        char c = (char)data[i];
        if (c == '%') {
            run_command();
        } else if (c == '\r' || c == '\n') {
            /* a terminal's line ends: not part of any command */
        } else if (cmd_len < ESPT_MLPERF_CMD_SIZE) {
            cmd[cmd_len++] = c;
        } else {
            cmd_overflow = 1;
        }
    }
    return link_failed ? -1 : 0;
}

int espt_mlperf_init(void)
{
    int rc = espt_board_init();
    if (rc != 0)
        return rc < 0 ? rc : -1;
    memset(&model, 0, sizeof model);
    if (espt_engine_init(&model) != 0 && model.status == ESPT_STATUS_READY)
        model.status = ESPT_STATUS_MODEL_INVALID;
    model.detail[sizeof model.detail - 1] = '\0';
    task = guess_task();
    anomaly_task = memcmp(task, "ad01", 5) == 0;
    cmd_len = 0;
    cmd_overflow = 0;
    db_size = db_pos = 0;
    have_results = 0;
    tx_len = 0;
    link_failed = 0;
    line("m-timestamp-mode-performance");
    put_timestamp(espt_board_micros());
    line("m-init-done");
    line("m-ready");
    flush();
    return link_failed ? -1 : 0;
}

int espt_mlperf_poll(uint32_t read_timeout_ms)
{
    int n = espt_board_read(rx, sizeof rx, read_timeout_ms);
    int rc = 0;
    if (n < 0)
        return n;
    if (n > 0)
        rc = espt_mlperf_feed(rx, (size_t)n > sizeof rx ? sizeof rx : (size_t)n);
    espt_board_idle();
    return rc;
}

int espt_mlperf_main(void)
{
    int rc = espt_mlperf_init();
    while (rc >= 0)
        rc = espt_mlperf_poll(ESPT_MLPERF_POLL_MS);
    return rc;
}
