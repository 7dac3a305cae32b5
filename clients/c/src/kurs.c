/*
 * kurs.c - the Kurs C client: in-house Kurs, then ExchangeRate-API v6, then the last good cached
 * value (stale), then a typed error. Decimal strings throughout: JSON strings from Kurs are copied
 * as they are, and v6's JSON numbers are copied as their literal text, never through a double.
 */
#define _POSIX_C_SOURCE 200809L
#include "kurs.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_SLOTS 256
#define CACHE_KEY_MAX 160
#define URL_MAX 1024
#define BODY_MAX (4L * 1024 * 1024)

typedef struct {
    char key[CACHE_KEY_MAX];
    kurs_quote quote;
    double at; /* monotonic seconds */
    int used;
} cache_slot;

struct kurs_client {
    char *kurs_url;
    char *v6_url;
    char *v6_key;
    long timeout_ms;
    long cache_seconds;
    pthread_mutex_t lock; /* guards the cache and kurs_url */
    cache_slot cache[CACHE_SLOTS];
};

typedef struct {
    char *data;
    size_t len;
} buffer;

typedef enum { OP_LATEST, OP_CONVERT, OP_HISTORICAL } operation;

typedef struct {
    operation op;
    char base[8];
    char target[8];
    char amount[KURS_DECIMAL_MAX];
    char date[KURS_DATE_MAX];
} request;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

/* -- HTTP ----------------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t count, void *user) {
    buffer *buf = user;
    size_t n = size * count;
    if (buf->len + n > (size_t)BODY_MAX) return 0;
    char *grown = realloc(buf->data, buf->len + n + 1);
    if (grown == NULL) return 0;
    buf->data = grown;
    memcpy(buf->data + buf->len, data, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

/* GET url; on a transport failure returns KURS_ERR_NETWORK, else KURS_OK with *status set. */
static kurs_status http_get(const kurs_client *client, const char *url, buffer *body, long *status) {
    CURL *curl = curl_easy_init();
    if (curl == NULL) return KURS_ERR_MEMORY;
    body->data = NULL;
    body->len = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, client->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "kurs-c/1.0");
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        free(body->data);
        body->data = NULL;
        return KURS_ERR_NETWORK;
    }
    if (body->data == NULL) {
        body->data = calloc(1, 1);
        if (body->data == NULL) return KURS_ERR_MEMORY;
    }
    return KURS_OK;
}

static int copy_text(char *out, size_t cap, const char *text) {
    if (text == NULL || strlen(text) >= cap) return -1;
    strcpy(out, text);
    return 0;
}

/* -- in-house Kurs ---------------------------------------------------------------------------- */

static kurs_status kurs_leg(kurs_client *client, const request *req, kurs_quote *out) {
    char url[URL_MAX];
    pthread_mutex_lock(&client->lock);
    int have = client->kurs_url != NULL;
    if (have) {
        const char *u = client->kurs_url;
        if (req->op == OP_LATEST)
            snprintf(url, sizeof url, "%s/rates/latest?base=%s&symbols=%s", u, req->base, req->target);
        else if (req->op == OP_CONVERT)
            snprintf(url, sizeof url, "%s/rates/convert?from=%s&to=%s&amount=%s", u, req->base, req->target,
                     req->amount);
        else
            snprintf(url, sizeof url, "%s/rates/historical?date=%s&base=%s&symbols=%s", u, req->date,
                     req->base, req->target);
    }
    pthread_mutex_unlock(&client->lock);
    if (!have) return KURS_ERR_NETWORK;
    buffer body;
    long status = 0;
    kurs_status rc = http_get(client, url, &body, &status);
    if (rc != KURS_OK) return rc;
    cJSON *json = cJSON_Parse(body.data);
    free(body.data);
    if (status == 404) rc = KURS_ERR_NO_DATA;
    else if (status == 400) rc = KURS_ERR_UNSUPPORTED_CODE; /* Kurs names the bad parameter; shapes were checked here */
    else if (status != 200) rc = KURS_ERR_HTTP;
    else if (json == NULL) rc = KURS_ERR_PARSE;
    else {
        const cJSON *rate = NULL, *result = NULL;
        if (req->op == OP_CONVERT) {
            rate = cJSON_GetObjectItemCaseSensitive(json, "rate");
            result = cJSON_GetObjectItemCaseSensitive(json, "result");
        } else {
            rate = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "rates"), req->target);
        }
        const cJSON *date = cJSON_GetObjectItemCaseSensitive(json, "date");
        memset(out, 0, sizeof *out);
        if (!cJSON_IsString(rate) || copy_text(out->rate, sizeof out->rate, rate->valuestring) != 0)
            rc = cJSON_IsObject(json) && req->op != OP_CONVERT ? KURS_ERR_UNSUPPORTED_CODE : KURS_ERR_PARSE;
        else if (req->op == OP_CONVERT &&
                 (!cJSON_IsString(result) || copy_text(out->result, sizeof out->result, result->valuestring) != 0))
            rc = KURS_ERR_PARSE;
        else {
            if (cJSON_IsString(date)) copy_text(out->date, sizeof out->date, date->valuestring);
            out->origin = KURS_ORIGIN_KURS;
        }
    }
    cJSON_Delete(json);
    return rc;
}

/* -- ExchangeRate-API v6 ---------------------------------------------------------------------- */

/* Copy the literal of the JSON number that follows "key": (searched from `from`), as text. */
static int raw_number(const char *from, const char *key, char *out, size_t cap) {
    char needle[32];
    snprintf(needle, sizeof needle, "\"%s\"", key);
    for (const char *at = strstr(from, needle); at != NULL; at = strstr(at + 1, needle)) {
        const char *p = at + strlen(needle);
        while (isspace((unsigned char)*p)) p++;
        if (*p != ':') continue;
        p++;
        while (isspace((unsigned char)*p)) p++;
        size_t n = 0;
        while (p[n] != '\0' && (isdigit((unsigned char)p[n]) || strchr("-+.eE", p[n]) != NULL)) n++;
        if (n == 0 || n >= cap) return -1;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

static kurs_status v6_error(const cJSON *json, long status) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(json, "error-type");
    if (cJSON_IsString(type)) {
        if (strcmp(type->valuestring, "unsupported-code") == 0) return KURS_ERR_UNSUPPORTED_CODE;
        if (strcmp(type->valuestring, "no-data-available") == 0) return KURS_ERR_NO_DATA;
        if (strcmp(type->valuestring, "malformed-request") == 0) return KURS_ERR_INVALID_ARGUMENT;
    }
    return status == 200 ? KURS_ERR_PARSE : KURS_ERR_HTTP;
}

static kurs_status v6_leg(const kurs_client *client, const request *req, kurs_quote *out) {
    if (client->v6_url == NULL || client->v6_key == NULL) return KURS_ERR_NETWORK;
    char url[URL_MAX];
    const char *u = client->v6_url, *k = client->v6_key;
    if (req->op == OP_LATEST)
        snprintf(url, sizeof url, "%s/%s/pair/%s/%s", u, k, req->base, req->target);
    else if (req->op == OP_CONVERT)
        snprintf(url, sizeof url, "%s/%s/pair/%s/%s/%s", u, k, req->base, req->target, req->amount);
    else
        snprintf(url, sizeof url, "%s/%s/history/%s/%.4s/%d/%d", u, k, req->base, req->date,
                 atoi(req->date + 5), atoi(req->date + 8));
    buffer body;
    long status = 0;
    kurs_status rc = http_get(client, url, &body, &status);
    if (rc != KURS_OK) return rc;
    cJSON *json = cJSON_Parse(body.data);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(json, "result");
    memset(out, 0, sizeof *out);
    if (json == NULL) rc = status == 200 ? KURS_ERR_PARSE : KURS_ERR_HTTP;
    else if (status != 200 || !cJSON_IsString(result) || strcmp(result->valuestring, "success") != 0)
        rc = v6_error(json, status);
    else if (req->op == OP_HISTORICAL) {
        const char *rates = strstr(body.data, "\"conversion_rates\"");
        if (rates == NULL) rc = KURS_ERR_PARSE;
        else if (raw_number(rates, req->target, out->rate, sizeof out->rate) != 0) rc = KURS_ERR_UNSUPPORTED_CODE;
        else copy_text(out->date, sizeof out->date, req->date);
    } else if (raw_number(body.data, "conversion_rate", out->rate, sizeof out->rate) != 0)
        rc = KURS_ERR_PARSE;
    else if (req->op == OP_CONVERT &&
             raw_number(body.data, "conversion_result", out->result, sizeof out->result) != 0)
        rc = KURS_ERR_PARSE;
    if (rc == KURS_OK) out->origin = KURS_ORIGIN_V6;
    cJSON_Delete(json);
    free(body.data);
    return rc;
}

/* -- cache ------------------------------------------------------------------------------------- */

static void cache_key(const request *req, char *key) {
    snprintf(key, CACHE_KEY_MAX, "%d|%s|%s|%s|%s", (int)req->op, req->base, req->target, req->amount, req->date);
}

/* 1: found (fresh when *fresh); 0: absent. */
static int cache_get(kurs_client *client, const char *key, kurs_quote *out, int *fresh) {
    int found = 0;
    pthread_mutex_lock(&client->lock);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *slot = &client->cache[i];
        if (slot->used && strcmp(slot->key, key) == 0) {
            *out = slot->quote;
            *fresh = now_seconds() - slot->at < (double)client->cache_seconds;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&client->lock);
    return found;
}

static void cache_put(kurs_client *client, const char *key, const kurs_quote *quote) {
    pthread_mutex_lock(&client->lock);
    cache_slot *target = NULL;
    for (int i = 0; i < CACHE_SLOTS && target == NULL; i++)
        if (client->cache[i].used && strcmp(client->cache[i].key, key) == 0) target = &client->cache[i];
    for (int i = 0; i < CACHE_SLOTS && target == NULL; i++)
        if (!client->cache[i].used) target = &client->cache[i];
    if (target == NULL) { /* evict the oldest */
        target = &client->cache[0];
        for (int i = 1; i < CACHE_SLOTS; i++)
            if (client->cache[i].at < target->at) target = &client->cache[i];
    }
    snprintf(target->key, sizeof target->key, "%s", key);
    target->quote = *quote;
    target->at = now_seconds();
    target->used = 1;
    pthread_mutex_unlock(&client->lock);
}

/* -- the fallback chain -------------------------------------------------------------------------- */

static int typed(kurs_status rc) {
    return rc == KURS_ERR_UNSUPPORTED_CODE || rc == KURS_ERR_NO_DATA || rc == KURS_ERR_INVALID_ARGUMENT;
}

static kurs_status resolve(kurs_client *client, const request *req, kurs_quote *out) {
    char key[CACHE_KEY_MAX];
    kurs_quote cached;
    int fresh = 0;
    cache_key(req, key);
    int found = cache_get(client, key, &cached, &fresh);
    if (found && fresh) {
        *out = cached;
        out->origin = KURS_ORIGIN_CACHE;
        out->stale = 0;
        return KURS_OK;
    }
    kurs_quote live;
    kurs_status first = kurs_leg(client, req, &live);
    kurs_status second = KURS_ERR_NETWORK;
    if (first == KURS_ERR_MEMORY) return first;
    if (first != KURS_OK) second = v6_leg(client, req, &live);
    if (first == KURS_OK || second == KURS_OK) {
        cache_put(client, key, &live);
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
