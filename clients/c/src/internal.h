/*
 * internal.h - what the C client's own modules share (not installed, not part of the ABI):
 * the client's layout, one request, a response body, and the functions of each module.
 *
 *   kurs.c   the public calls: client lifecycle, argument shapes, the fallback chain
 *   cache.c  the per-client cache of quotes (fresh, then stale as the last resort)
 *   http.c   one GET with libcurl into a bounded buffer
 *   legs.c   the two sources: in-house Kurs (/rates/...) and ExchangeRate-API v6
 *
 * Functions declared here are named kurs__* (libkurs.a links them into the caller's program, so
 * they must not take a name the program may use) and hidden: libkurs.so exports only kurs.h.
 */
#ifndef KURS_INTERNAL_H
#define KURS_INTERNAL_H

/* Included first by every module, so the POSIX declarations (clock_gettime) are visible. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "kurs.h"

#include <pthread.h>
#include <stddef.h>

#define KURS_HIDDEN __attribute__((visibility("hidden")))

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

/* cache.c */
KURS_HIDDEN void kurs__cache_key(const request *req, char *key);
/* 1: found (fresh when *fresh); 0: absent. */
KURS_HIDDEN int kurs__cache_get(kurs_client *client, const char *key, kurs_quote *out, int *fresh);
KURS_HIDDEN void kurs__cache_put(kurs_client *client, const char *key, const kurs_quote *quote);

/* http.c */
/* GET url; on a transport failure returns KURS_ERR_NETWORK, else KURS_OK with *status set. */
KURS_HIDDEN kurs_status kurs__http_get(const kurs_client *client, const char *url, buffer *body, long *status);
/* Copy text into out[cap]; -1 when absent or too long. */
KURS_HIDDEN int kurs__copy_text(char *out, size_t cap, const char *text);

/* legs.c */
KURS_HIDDEN kurs_status kurs__gateway_leg(kurs_client *client, const request *req, kurs_quote *out);
KURS_HIDDEN kurs_status kurs__v6_leg(const kurs_client *client, const request *req, kurs_quote *out);

#endif
