/*
 * example.c - convert an amount with the Kurs C client.
 * Usage: kurs-example KURS_URL FROM TO AMOUNT [V6_URL V6_KEY]
 */
#include <stdio.h>

#include "kurs.h"

int main(int argc, char **argv) {
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: %s KURS_URL FROM TO AMOUNT [V6_URL V6_KEY]\n", argv[0]);
        return 2;
    }
    if (kurs_global_init() != 0) return 1;
    kurs_client *client = kurs_client_new(argv[1], argc == 7 ? argv[5] : NULL, argc == 7 ? argv[6] : NULL);
    if (client == NULL) {
        kurs_global_cleanup();
        return 1;
    }
    kurs_quote quote;
    kurs_status status = kurs_convert(client, argv[2], argv[3], argv[4], &quote);
    static const char *origins[] = {"kurs", "exchangerate-api", "cache"};
    if (status == KURS_OK || status == KURS_STALE)
        printf("%s %s = %s %s (rate %s, %s%s)\n", argv[4], argv[2], quote.result, argv[3], quote.rate,
               origins[quote.origin], quote.stale ? ", stale" : "");
    else
        fprintf(stderr, "error: %s\n", kurs_status_string(status));
    kurs_client_free(client);
    kurs_global_cleanup();
    return status == KURS_OK || status == KURS_STALE ? 0 : 1;
}
