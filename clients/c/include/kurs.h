/*
 * kurs.h - C ABI client for Kurs exchange rates (the route by which Runa's runtime calls Kurs).
 *
 * Every rate and amount is a decimal string, never a double: figures are copied digit for
 * digit from the server's answer. Each call tries, in order:
 *   1. a cached answer younger than the cache lifetime (30 minutes by default);
 *   2. the in-house Kurs gateway (/rates/latest, /rates/convert, /rates/historical);
 *   3. ExchangeRate-API v6 at the configured URL and key (/pair, /history);
 *   4. the last good cached answer however old, returned with KURS_STALE and quote->stale = 1;
 * and otherwise a typed error. A client may be shared by threads (its cache is behind a mutex;
 * every call uses its own curl handle). Call kurs_global_init() once before any thread starts.
 */
#ifndef KURS_H
#define KURS_H

#ifdef __cplusplus
extern "C" {
#endif

#define KURS_DECIMAL_MAX 64
#define KURS_DATE_MAX 11

typedef enum {
    KURS_OK = 0,
    KURS_STALE = 1,                  /* served from an expired cache entry: every live source failed */
    KURS_ERR_INVALID_ARGUMENT = -1,  /* a code, date or amount of the wrong shape */
    KURS_ERR_NETWORK = -2,           /* no source could be reached and nothing was cached */
    KURS_ERR_HTTP = -3,              /* a source answered with an unexpected HTTP status */
    KURS_ERR_PARSE = -4,             /* a source answered something that is not the expected JSON */
    KURS_ERR_UNSUPPORTED_CODE = -5,  /* a source said the currency is not served */
    KURS_ERR_NO_DATA = -6,           /* a source has no figure for that date */
    KURS_ERR_MEMORY = -7
} kurs_status;

typedef enum { KURS_ORIGIN_KURS = 0, KURS_ORIGIN_V6 = 1, KURS_ORIGIN_CACHE = 2 } kurs_origin;

typedef struct {
    char rate[KURS_DECIMAL_MAX];   /* units of the target per one unit of the base */
    char result[KURS_DECIMAL_MAX]; /* kurs_convert only: the converted amount */
    char date[KURS_DATE_MAX];      /* business date of the figure (YYYY-MM-DD) when known, else "" */
    kurs_origin origin;
    int stale;
} kurs_quote;

typedef struct kurs_client kurs_client;

int kurs_global_init(void);
void kurs_global_cleanup(void);

/* kurs_url e.g. "http://127.0.0.1:8000"; v6_url e.g. "https://v6.exchangerate-api.com/v6" (NULL: none). */
kurs_client *kurs_client_new(const char *kurs_url, const char *v6_url, const char *v6_key);
void kurs_client_free(kurs_client *client);
int kurs_client_set_kurs_url(kurs_client *client, const char *kurs_url);
void kurs_client_set_timeout_ms(kurs_client *client, long timeout_ms);
void kurs_client_set_cache_seconds(kurs_client *client, long seconds);

kurs_status kurs_latest(kurs_client *client, const char *base, const char *symbol, kurs_quote *out);
kurs_status kurs_convert(kurs_client *client, const char *from, const char *to, const char *amount,
                         kurs_quote *out);
kurs_status kurs_historical(kurs_client *client, const char *date, const char *base, const char *symbol,
                            kurs_quote *out);

const char *kurs_status_string(kurs_status status);

#ifdef __cplusplus
}
#endif
#endif
