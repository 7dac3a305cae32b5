/*
 * legs.c - the two live sources of a quote: the in-house Kurs gateway (JSON strings copied as they
 * are) and ExchangeRate-API v6 (its JSON numbers copied as their literal text, never through a
 * double). Each answers a typed status; the fallback chain (kurs.c) decides what comes next.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -- in-house Kurs ---------------------------------------------------------------------------- */

kurs_status kurs__gateway_leg(kurs_client *client, const request *req, kurs_quote *out) {
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
    kurs_status rc = kurs__http_get(client, url, &body, &status);
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
        if (!cJSON_IsString(rate) || kurs__copy_text(out->rate, sizeof out->rate, rate->valuestring) != 0)
            rc = cJSON_IsObject(json) && req->op != OP_CONVERT ? KURS_ERR_UNSUPPORTED_CODE : KURS_ERR_PARSE;
        else if (req->op == OP_CONVERT &&
                 (!cJSON_IsString(result) || kurs__copy_text(out->result, sizeof out->result, result->valuestring) != 0))
            rc = KURS_ERR_PARSE;
        else {
            if (cJSON_IsString(date)) kurs__copy_text(out->date, sizeof out->date, date->valuestring);
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

kurs_status kurs__v6_leg(const kurs_client *client, const request *req, kurs_quote *out) {
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
    kurs_status rc = kurs__http_get(client, url, &body, &status);
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
        else kurs__copy_text(out->date, sizeof out->date, req->date);
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

