/*
 * bench-template.c - throughput of the template engine: parse once, then decode an event
 * and render a typical Flipt body (Slack-style text plus toJson of the payload) N times.
 * Prints nanoseconds per operation for event decode, execute and decode+execute+validate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gotmpl/gojson.h"
#include "gotmpl/gotmpl.h"

static const char event[] =
    "{\"version\":\"0.2\",\"type\":\"segment\",\"action\":\"created\",\"metadata\":{\"actor\":{"
    "\"authentication\":\"oidc\",\"email\":\"dev@example.com\",\"name\":\"Dev Person\"}},"
    "\"payload\":{\"constraints\":[{\"id\":\"4f3c\",\"namespace_key\":\"default\",\"operator\":"
    "\"eq\",\"property\":\"region\",\"segment_key\":\"eu-users\",\"type\":\"STRING_COMPARISON_"
    "TYPE\",\"value\":\"eu\"}],\"description\":\"Users in the EU\",\"key\":\"eu-users\","
    "\"match_type\":\"ALL_MATCH_TYPE\",\"name\":\"EU users\",\"namespace_key\":\"default\"},"
    "\"timestamp\":\"2024-06-09T12:01:00Z\",\"status\":\"success\"}";

static const char tmpl[] =
    "{\n  \"text\": \"Flipt: {{ .Type }} {{ .Action }} by {{ .Metadata.Actor.Email }}\",\n"
    "  {{- if .Payload }}\n  \"key\": {{ toJson .Payload.key }},\n{{- end }}\n"
    "  \"constraints\": [{{ range $i, $c := .Payload.constraints }}{{ if $i }},{{ end }}"
    "{{ printf \"%q\" $c.property }}{{ end }}],\n  \"payload\": {{ toJson .Payload }}\n}";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    char err[256];
    gotmpl *t;
    if (gotmpl_parse(tmpl, sizeof tmpl - 1, &t, err, sizeof err) != GOTMPL_OK) {
        fprintf(stderr, "parse: %s\n", err);
        return 1;
    }
    gotmpl_event *ev;
    double t0 = now();
    for (int i = 0; i < n; i++) {
        if (gotmpl_event_parse(event, sizeof event - 1, &ev, err, sizeof err) != GOTMPL_OK)
            return 1;
        gotmpl_event_free(ev);
    }
    double t1 = now();
    if (gotmpl_event_parse(event, sizeof event - 1, &ev, err, sizeof err) != GOTMPL_OK)
        return 1;
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        char *out;
        size_t len;
        if (gotmpl_execute(t, ev, NULL, &out, &len, err, sizeof err) != GOTMPL_OK) {
            fprintf(stderr, "execute: %s\n", err);
            return 1;
        }
        bytes = len;
        free(out);
    }
    double t2 = now();
    for (int i = 0; i < n; i++) {
        char *out;
        size_t len;
        if (gotmpl_render(t, event, sizeof event - 1, NULL, &out, &len, err, sizeof err) !=
            GOTMPL_OK) {
            fprintf(stderr, "render: %s\n", err);
            return 1;
        }
        free(out);
    }
    double t3 = now();
    printf("event decode: %.0f ns/op\nexecute (%zu-byte body): %.0f ns/op\n"
           "render (decode+execute+json.Valid): %.0f ns/op\n",
           (t1 - t0) / n, bytes, (t2 - t1) / n, (t3 - t2) / n);
    gotmpl_event_free(ev);
    gotmpl_free(t);
    return 0;
}
