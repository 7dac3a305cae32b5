/*
 * kurs.c - the Kurs C client: in-house Kurs, then ExchangeRate-API v6, then the last good cached
 * value (stale), then a typed error. Decimal strings throughout: JSON strings from Kurs are copied
 * as they are, and v6's JSON numbers are copied as their literal text, never through a double.
 * This file holds the public calls (kurs.h): the client's lifecycle, the argument shapes and the
 * fallback chain; the cache, HTTP and the two sources are in cache.c, http.c and legs.c.
 */
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *text) {
    if (text == NULL || *text == '\0') return NULL;
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '/') n--; /* no trailing slash: paths are appended */
    char *copy = malloc(n + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, text, n);
    copy[n] = '\0';
    return copy;
}

int kurs_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

void kurs_global_cleanup(void) { curl_global_cleanup(); }

kurs_client *kurs_client_new(const char *kurs_url, const char *v6_url, const char *v6_key) {
    kurs_client *client = calloc(1, sizeof *client);
    if (client == NULL) return NULL;
    client->kurs_url = dup_or_null(kurs_url);
    client->v6_url = dup_or_null(v6_url);
    client->v6_key = dup_or_null(v6_key);
    client->timeout_ms = 5000;
    client->cache_seconds = 30 * 60;
    if (pthread_mutex_init(&client->lock, NULL) != 0) {
        free(client->kurs_url);
        free(client->v6_url);
        free(client->v6_key);
        free(client);
        return NULL;
    }
    return client;
}

void kurs_client_free(kurs_client *client) {
    if (client == NULL) return;
    pthread_mutex_destroy(&client->lock);
    free(client->kurs_url);
    free(client->v6_url);
    free(client->v6_key);
    free(client);
}

int kurs_client_set_kurs_url(kurs_client *client, const char *kurs_url) {
    char *copy = dup_or_null(kurs_url);
    if (kurs_url != NULL && *kurs_url != '\0' && copy == NULL) return -1;
    pthread_mutex_lock(&client->lock);
    free(client->kurs_url);
    client->kurs_url = copy;
    pthread_mutex_unlock(&client->lock);
    return 0;
}

void kurs_client_set_timeout_ms(kurs_client *client, long timeout_ms) { client->timeout_ms = timeout_ms; }

void kurs_client_set_cache_seconds(kurs_client *client, long seconds) {
    pthread_mutex_lock(&client->lock);
    client->cache_seconds = seconds;
    pthread_mutex_unlock(&client->lock);
}

const char *kurs_status_string(kurs_status status) {
    switch (status) {
    case KURS_OK: return "ok";
    case KURS_STALE: return "stale cached value";
    case KURS_ERR_INVALID_ARGUMENT: return "invalid argument";
    case KURS_ERR_NETWORK: return "network error";
    case KURS_ERR_HTTP: return "unexpected HTTP status";
    case KURS_ERR_PARSE: return "unexpected answer";
    case KURS_ERR_UNSUPPORTED_CODE: return "unsupported currency code";
    case KURS_ERR_NO_DATA: return "no data for that date";
    case KURS_ERR_MEMORY: return "out of memory";
    }
    return "unknown status";
}

/* -- argument shapes ------------------------------------------------------------------------ */

static int copy_code(const char *text, char *out) {
    size_t n = text ? strlen(text) : 0;
    if (n < 3 || n > 4) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isalpha((unsigned char)text[i])) return -1;
        out[i] = (char)toupper((unsigned char)text[i]);
    }
    out[n] = '\0';
    return 0;
}

static int valid_decimal(const char *text) {
    size_t n = text ? strlen(text) : 0, dots = 0, digits = 0;
    if (n == 0 || n >= KURS_DECIMAL_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '.') dots++;
        else if (isdigit((unsigned char)text[i])) digits++;
        else return 0;
    }
    return dots <= 1 && digits > 0;
}

static int valid_date(const char *text) {
    if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)text[i])) return 0;
    return 1;
}

/* -- the fallback chain -------------------------------------------------------------------------- */

static int typed(kurs_status rc) {
    return rc == KURS_ERR_UNSUPPORTED_CODE || rc == KURS_ERR_NO_DATA || rc == KURS_ERR_INVALID_ARGUMENT;
}

static kurs_status resolve(kurs_client *client, const request *req, kurs_quote *out) {
    char key[CACHE_KEY_MAX];
    kurs_quote cached;
    int fresh = 0;
    kurs__cache_key(req, key);
    int found = kurs__cache_get(client, key, &cached, &fresh);
    if (found && fresh) {
        *out = cached;
        out->origin = KURS_ORIGIN_CACHE;
        out->stale = 0;
        return KURS_OK;
    }
    kurs_quote live;
    kurs_status first = kurs__gateway_leg(client, req, &live);
    kurs_status second = KURS_ERR_NETWORK;
    if (first == KURS_ERR_MEMORY) return first;
    if (first != KURS_OK) second = kurs__v6_leg(client, req, &live);
    if (first == KURS_OK || second == KURS_OK) {
        kurs__cache_put(client, key, &live);
        *out = live;
        return KURS_OK;
    }
    if (found) {
        *out = cached;
        out->origin = KURS_ORIGIN_CACHE;
        out->stale = 1;
        return KURS_STALE;
    }
    if (typed(first)) return first;
    if (typed(second)) return second;
    return first;
}

kurs_status kurs_latest(kurs_client *client, const char *base, const char *symbol, kurs_quote *out) {
    request req = {.op = OP_LATEST};
    if (client == NULL || out == NULL || copy_code(base, req.base) || copy_code(symbol, req.target))
        return KURS_ERR_INVALID_ARGUMENT;
    return resolve(client, &req, out);
}

kurs_status kurs_convert(kurs_client *client, const char *from, const char *to, const char *amount,
                         kurs_quote *out) {
    request req = {.op = OP_CONVERT};
    if (client == NULL || out == NULL || copy_code(from, req.base) || copy_code(to, req.target) ||
        !valid_decimal(amount))
        return KURS_ERR_INVALID_ARGUMENT;
    strcpy(req.amount, amount);
    return resolve(client, &req, out);
}

kurs_status kurs_historical(kurs_client *client, const char *date, const char *base, const char *symbol,
                            kurs_quote *out) {
    request req = {.op = OP_HISTORICAL};
    if (client == NULL || out == NULL || !valid_date(date) || copy_code(base, req.base) ||
        copy_code(symbol, req.target))
        return KURS_ERR_INVALID_ARGUMENT;
    strcpy(req.date, date);
    return resolve(client, &req, out);
}
