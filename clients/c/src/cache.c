/*
 * cache.c - a client's cache of quotes (CACHE_SLOTS, the oldest evicted), keyed on the whole
 * request: fresh for cache_seconds, then kept as the last resort when every live source fails.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kurs__cache_key(const request *req, char *key) {
    snprintf(key, CACHE_KEY_MAX, "%d|%s|%s|%s|%s", (int)req->op, req->base, req->target, req->amount, req->date);
}

int kurs__cache_get(kurs_client *client, const char *key, kurs_quote *out, int *fresh) {
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

void kurs__cache_put(kurs_client *client, const char *key, const kurs_quote *quote) {
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

