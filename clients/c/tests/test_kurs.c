/*
 * test_kurs.c - the C client against a running gateway (started by tests/integration/gateway/
 * test_c_client.py, run under valgrind). Usage: test_kurs GATEWAY_URL DEAD_URL
 * Prints "name value" lines that the Python driver compares with the gateway's REST answers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurs.h"

static int failures = 0;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                             \
        }                                                                           \
    } while (0)

typedef struct {
    kurs_client *client;
    int ok;
} worker;

static void *hammer(void *arg) {
    worker *w = arg;
    static const char *codes[] = {"USD", "GBP", "JPY", "CHF"};
    for (int i = 0; i < 20; i++) {
        kurs_quote q;
        if (kurs_latest(w->client, "EUR", codes[i % 4], &q) == KURS_OK && q.rate[0] != '\0') w->ok++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s GATEWAY_URL DEAD_URL\n", argv[0]);
        return 2;
    }
    const char *gateway = argv[1], *dead = argv[2];
    char v6[512];
    snprintf(v6, sizeof v6, "%s/v6", gateway);
    CHECK(kurs_global_init() == 0);
    kurs_quote q;

    /* In-house first. */
    kurs_client *c = kurs_client_new(gateway, NULL, NULL);
    CHECK(kurs_latest(c, "usd", "EUR", &q) == KURS_OK);
    CHECK(q.origin == KURS_ORIGIN_KURS && q.stale == 0 && strlen(q.date) == 10);
    printf("latest_USD_EUR %s\n", q.rate);
    CHECK(kurs_convert(c, "USD", "GBP", "123.45", &q) == KURS_OK);
    printf("convert_USD_GBP_123.45 %s %s\n", q.rate, q.result);
    CHECK(kurs_historical(c, "2025-01-17", "EUR", "USD", &q) == KURS_OK);
    CHECK(strcmp(q.date, "2025-01-17") == 0);
    printf("historical_2025-01-17_EUR_USD %s\n", q.rate);
    /* Within 30 minutes the same question is answered from the cache. */
    CHECK(kurs_latest(c, "USD", "EUR", &q) == KURS_OK);
    CHECK(q.origin == KURS_ORIGIN_CACHE);
    /* Typed errors. */
    CHECK(kurs_latest(c, "US", "EUR", &q) == KURS_ERR_INVALID_ARGUMENT);
    CHECK(kurs_convert(c, "USD", "EUR", "1e5", &q) == KURS_ERR_INVALID_ARGUMENT);
    CHECK(kurs_historical(c, "2025-1-17", "EUR", "USD", &q) == KURS_ERR_INVALID_ARGUMENT);
    CHECK(kurs_latest(c, "USD", "XXQ", &q) == KURS_ERR_UNSUPPORTED_CODE);
    CHECK(kurs_historical(c, "1990-01-02", "EUR", "USD", &q) == KURS_ERR_NO_DATA);
    /* Kurs gone, nothing configured behind it: the expired cached value, marked stale. */
    kurs_client_set_cache_seconds(c, 0);
    CHECK(kurs_client_set_kurs_url(c, dead) == 0);
    CHECK(kurs_latest(c, "USD", "EUR", &q) == KURS_STALE);
    CHECK(q.stale == 1 && q.origin == KURS_ORIGIN_CACHE);
    printf("stale_USD_EUR %s\n", q.rate);
    CHECK(kurs_latest(c, "USD", "CHF", &q) == KURS_ERR_NETWORK);
    kurs_client_free(c);

    /* Kurs gone, ExchangeRate-API v6 behind it (here: the gateway's own v6 routes). */
    kurs_client *f = kurs_client_new(dead, v6, "any-key");
    kurs_client_set_timeout_ms(f, 3000);
    CHECK(kurs_latest(f, "USD", "EUR", &q) == KURS_OK);
    CHECK(q.origin == KURS_ORIGIN_V6);
    printf("v6_latest_USD_EUR %s\n", q.rate);
    CHECK(kurs_convert(f, "USD", "GBP", "123.45", &q) == KURS_OK);
    CHECK(q.origin == KURS_ORIGIN_V6);
    printf("v6_convert_USD_GBP_123.45 %s %s\n", q.rate, q.result);
    CHECK(kurs_historical(f, "2025-01-17", "EUR", "USD", &q) == KURS_OK);
    printf("v6_historical_2025-01-17_EUR_USD %s\n", q.rate);
    CHECK(kurs_latest(f, "USD", "XXQ", &q) == KURS_ERR_UNSUPPORTED_CODE);
    kurs_client_free(f);

    /* One client shared by threads. */
    kurs_client *shared = kurs_client_new(gateway, NULL, NULL);
    pthread_t threads[4];
    worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker){shared, 0};
        CHECK(pthread_create(&threads[i], NULL, hammer, &workers[i]) == 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        total += workers[i].ok;
    }
    CHECK(total == 80);
    kurs_client_free(shared);

    kurs_global_cleanup();
    printf("%d passed, %d failed\n", failures == 0 ? 1 : 0, failures == 0 ? 0 : 1);
    return failures == 0 ? 0 : 1;
}
