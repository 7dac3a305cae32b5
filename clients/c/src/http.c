/*
 * http.c - one GET with libcurl into a bounded, NUL-terminated buffer (BODY_MAX), each call with
 * its own curl handle (a client may be shared by threads).
 */
#include "internal.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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

kurs_status kurs__http_get(const kurs_client *client, const char *url, buffer *body, long *status) {
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

int kurs__copy_text(char *out, size_t cap, const char *text) {
    if (text == NULL || strlen(text) >= cap) return -1;
    strcpy(out, text);
    return 0;
}

