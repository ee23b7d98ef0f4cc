/* Unit tests for sse: SSE framing, the chat-completion decoder, error bodies, Retry-After. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "dream/core/error.h"
#include "dream/domain/sse.h"

struct events {
    char got[8][256];
    int n;
};

static int collect(void *arg, const char *data, size_t len)
{
    struct events *e = arg;
    cr_assert_eq(strlen(data), len);
    if (e->n < 8) {
        snprintf(e->got[e->n], sizeof(e->got[0]), "%s", data);
    }
    e->n++;
    return 0;
}

Test(sse, frames_events_comments_and_line_endings)
{
    struct dm_sse p;
    struct events e = {0};
    const char *in = ": OPENROUTER PROCESSING\n\n"
                     "data: one\n\n"
                     "data:two\r\ndata: lines\r\n\r\n"
                     "event: x\nid: 7\ndata: three\r\rdata: [DONE]\n\n";
    dm_sse_init(&p, 0, collect, &e);
    cr_assert_eq(dm_sse_feed(&p, in, strlen(in)), 0);
    cr_assert_eq(e.n, 4);
    cr_assert_str_eq(e.got[0], "one");
    cr_assert_str_eq(e.got[1], "two\nlines");
    cr_assert_str_eq(e.got[2], "three");
    cr_assert_str_eq(e.got[3], "[DONE]");
    cr_assert_eq(p.comments, 1);
    cr_assert_eq(dm_sse_pending(&p), 0);
    dm_sse_free(&p);
}

Test(sse, byte_by_byte_equals_whole)
{
    struct dm_sse p;
    struct events e = {0};
    const char *in = "data: a\r\n\r\n: c\r\ndata: b\n\ndata: tail";
    dm_sse_init(&p, 0, collect, &e);
    for (size_t i = 0; i < strlen(in); i++) {
        cr_assert_eq(dm_sse_feed(&p, in + i, 1), 0);
    }
    cr_assert_eq(e.n, 2);
    cr_assert_str_eq(e.got[0], "a");
    cr_assert_str_eq(e.got[1], "b");
    /* An unterminated event is pending, never dispatched. */
    cr_assert_eq(dm_sse_pending(&p), 1);
    dm_sse_free(&p);
}

Test(sse, caps_event_size)
{
    struct dm_sse p;
    struct events e = {0};
    char big[200];
    memset(big, 'x', sizeof(big));
    dm_sse_init(&p, 64, collect, &e);
    cr_assert_eq(dm_sse_feed(&p, "data: ", 6), 0);
    cr_assert_eq(dm_sse_feed(&p, big, sizeof(big)), DM_ERR_LIMIT);
    dm_sse_free(&p);
}

static const char *CHUNK1 = "data: {\"id\":\"gen-1\",\"model\":\"m/x\",\"choices\":[{\"index\":0,"
                            "\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},"
                            "\"finish_reason\":null}]}\n\n";
static const char *CHUNK2 = "data: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{"
                            "\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n";
static const char *USAGE = "data: {\"id\":\"gen-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,"
                           "\"completion_tokens\":2,\"total_tokens\":12,\"cost\":0.00012}}\n\n";

Test(sse_chat, decodes_a_stream_with_final_usage_chunk)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, ": OPENROUTER PROCESSING\n\n", 25, &err), 0);
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK1, strlen(CHUNK1), &err), 0);
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK2, strlen(CHUNK2), &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, 1, &err), DM_ERR_IO, "no [DONE] yet: cut");
    cr_assert_eq(dm_sse_chat_feed(&c, USAGE, strlen(USAGE), &err), 0);
    cr_assert_eq(dm_sse_chat_feed(&c, "data: [DONE]\n\n", 14, &err), 0);
    cr_assert_eq(dm_sse_chat_feed(&c, "data: {garbage after done\n\n", 27, &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, 1, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c.content.data, "Hello");
    cr_assert_str_eq(c.id, "gen-1");
    cr_assert_str_eq(c.model, "m/x");
    cr_assert_str_eq(c.finish_reason, "stop");
    cr_assert(c.usage.known && c.usage.has_cost);
    cr_assert_eq(c.usage.prompt_tokens, 10);
    cr_assert_eq(c.usage.completion_tokens, 2);
    cr_assert_float_eq(c.usage.cost, 0.00012, 1e-12);
    dm_sse_chat_free(&c);
}

Test(sse_chat, error_inside_a_200_stream_fails)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    const char *e1 = "data: {\"id\":\"g\",\"error\":{\"code\":429,\"message\":\"Rate limit "
                     "exceeded\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},"
                     "\"finish_reason\":\"error\"}]}\n\n";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK1, strlen(CHUNK1), &err), 0);
    cr_assert_eq(dm_sse_chat_feed(&c, e1, strlen(e1), &err), DM_ERR_REMOTE);
    cr_assert(strstr(err.msg, "Rate limit exceeded"), "%s", err.msg);
    cr_assert_eq(c.error.code, 429);
    cr_assert_eq(dm_sse_chat_verdict(&c, 1, &err), DM_ERR_REMOTE);
    dm_sse_chat_free(&c);

    /* finish_reason "error" without an error object is a failure too. */
    const char *e2 = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"error\"}]}\n\n";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, e2, strlen(e2), &err), DM_ERR_REMOTE);
    dm_sse_chat_free(&c);
}

Test(sse_chat, length_is_never_accepted_and_garbage_is_invalid)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    const char *len = "data: {\"choices\":[{\"delta\":{\"content\":\"abc\"},\"finish_reason\":"
                      "\"length\"}]}\n\ndata: [DONE]\n\n";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, len, strlen(len), &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, 1, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "length"));
    dm_sse_chat_free(&c);

    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, "data: {not json\n\n", 17, &err), DM_ERR_INVALID);
    dm_sse_chat_free(&c);
}

Test(sse_chat, content_cap)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    dm_sse_chat_init(&c, 4);
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK1, strlen(CHUNK1), &err), 0);
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK2, strlen(CHUNK2), &err), DM_ERR_LIMIT);
    dm_sse_chat_free(&c);
}

Test(sse_chat, non_streamed_reply)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    const char *ok = "{\"id\":\"gen-9\",\"model\":\"openai/gpt-4o\",\"choices\":[{\"index\":0,"
                     "\"message\":{\"role\":\"assistant\",\"content\":\"SELECT 1;\"},"
                     "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
                     "\"completion_tokens\":4}}";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_parse(&c, ok, strlen(ok), &err), 0, "%s", err.msg);
    cr_assert_eq(dm_sse_chat_verdict(&c, 0, &err), 0);
    cr_assert_str_eq(c.content.data, "SELECT 1;");
    cr_assert_str_eq(c.id, "gen-9");
    cr_assert_eq(c.usage.total_tokens, 7);
    cr_assert_eq(c.usage.has_cost, 0);
    dm_sse_chat_free(&c);

    const char *choice_err = "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":"
                             "\"error\",\"error\":{\"code\":502,\"message\":\"boom\"}}]}";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_parse(&c, choice_err, strlen(choice_err), &err), DM_ERR_REMOTE);
    cr_assert(strstr(err.msg, "boom"));
    dm_sse_chat_free(&c);

    const char *top = "{\"error\":{\"code\":400,\"message\":\"bad\"}}";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_parse(&c, top, strlen(top), &err), DM_ERR_REMOTE);
    dm_sse_chat_free(&c);

    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_parse(&c, "<html>", 6, &err), DM_ERR_INVALID);
    dm_sse_chat_free(&c);

    const char *empty =
        "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_parse(&c, empty, strlen(empty), &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, 0, &err), DM_ERR_INVALID);
    dm_sse_chat_free(&c);
}

Test(sse, error_body_and_limit_source)
{
    struct dm_sse_api_error e;
    const char *b = "{\"error\":{\"code\":402,\"message\":\"wait\",\"metadata\":{\"reason\":"
                    "\"in_flight_budget_exhausted\",\"limit_source\":"
                    "\"openrouter_in_flight_budget\"}}}";
    cr_assert_eq(dm_sse_parse_error(b, strlen(b), &e), 0);
    cr_assert_eq(e.code, 402);
    cr_assert_str_eq(e.limit_source, "openrouter_in_flight_budget");
    cr_assert_str_eq(e.reason, "in_flight_budget_exhausted");
    cr_assert_str_eq(e.message, "wait");
    cr_assert_eq(dm_sse_parse_error("nope", 4, &e), DM_ERR_INVALID);
    cr_assert_eq(e.present, 0);
}

Test(sse, retry_after_seconds_and_dates)
{
    long long ms = -1;
    cr_assert_eq(dm_sse_retry_after_ms("7", 0, &ms), 0);
    cr_assert_eq(ms, 7000);
    cr_assert_eq(dm_sse_retry_after_ms(" 0.5 ", 0, &ms), 0);
    cr_assert_eq(ms, 500);
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 s */
    cr_assert_eq(dm_sse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000LL, &ms), 0);
    cr_assert_eq(ms, 10000);
    cr_assert_eq(dm_sse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490000LL, &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(dm_sse_retry_after_ms("soon", 0, &ms), DM_ERR_INVALID);
    cr_assert_eq(dm_sse_retry_after_ms("-3", 0, &ms), DM_ERR_INVALID);
    cr_assert_eq(dm_sse_retry_after_ms("5x", 0, &ms), DM_ERR_INVALID);
}

/* The usage of a non-streamed reply whose usage object is usage_json. */
static struct dm_sse_usage usage_of(const char *usage_json)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    struct dm_sse_usage u;
    char body[512];

    snprintf(body, sizeof(body),
             "{\"id\":\"gen-u\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
             "\"content\":\"x\"},\"finish_reason\":\"stop\"}],\"usage\":%s}",
             usage_json);
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_parse(&c, body, strlen(body), &err), 0, "%s", err.msg);
    u = c.usage;
    dm_sse_chat_free(&c);
    return u;
}

Test(sse_chat, numbers_out_of_range_are_refused_not_stored)
{
    struct dm_sse_usage u;

    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":0.5}");
    cr_assert(u.known && u.has_cost && !u.suspect);
    cr_assert_float_eq(u.cost, 0.5, 1e-12);

    /* 1e999 parses as infinity: never a cost, never "inf" in an event. */
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":1e999}");
    cr_assert(u.known && !u.has_cost && u.suspect);
    cr_assert_eq(u.cost, 0);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":-1}");
    cr_assert(!u.has_cost && u.suspect);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":2e6}");
    cr_assert(!u.has_cost && u.suspect);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":\"0.1\"}");
    cr_assert(!u.has_cost && u.suspect);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":null}");
    cr_assert(!u.has_cost && !u.suspect);

    /* Token counts past 2^53, negative or infinite: the counts are not trusted at all (the
     * caller estimates them), and nothing is cast out of range. */
    u = usage_of("{\"prompt_tokens\":1e20,\"completion_tokens\":4}");
    cr_assert(!u.known && u.suspect);
    cr_assert_eq(u.prompt_tokens, 0);
    cr_assert_eq(u.completion_tokens, 0);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":-4}");
    cr_assert(!u.known && u.suspect);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":1e999}");
    cr_assert(!u.known && u.suspect);
    u = usage_of("{\"prompt_tokens\":9007199254740992,\"completion_tokens\":1}");
    cr_assert(u.known && !u.suspect);
    cr_assert_eq(u.prompt_tokens, 9007199254740992LL);
}

/* Issue 16: llama.cpp builds that end the body without `data: [DONE]`. */
Test(sse_chat, a_stream_ended_after_finish_stop_without_done_is_complete)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK1, strlen(CHUNK1), &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, DM_SSE_VERDICT_ENDED, &err), DM_ERR_IO,
                 "no finish_reason yet: cut");
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK2, strlen(CHUNK2), &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, DM_SSE_VERDICT_STREAM, &err), DM_ERR_IO,
                 "mid-stream, [DONE] is still awaited");
    cr_assert_eq(dm_sse_chat_verdict(&c, DM_SSE_VERDICT_ENDED, &err), 0, "%s", err.msg);
    /* An event left unfinished at the end of the body is a cut, finish_reason or not. */
    cr_assert_eq(dm_sse_chat_feed(&c, "data: {\"choices\":[]", 19, &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, DM_SSE_VERDICT_ENDED, &err), DM_ERR_IO);
    dm_sse_chat_free(&c);

    /* finish_reason length stays a failure without [DONE] too. */
    const char *len = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":"
                      "\"length\"}]}\n\n";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, len, strlen(len), &err), 0);
    cr_assert_eq(dm_sse_chat_verdict(&c, DM_SSE_VERDICT_ENDED, &err), DM_ERR_LIMIT);
    dm_sse_chat_free(&c);
}

Test(sse_chat, upstream_inference_cost_is_read_for_byok)
{
    struct dm_sse_usage u;
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":0.0001,"
                 "\"cost_details\":{\"upstream_inference_cost\":0.002}}");
    cr_assert(u.has_cost && u.has_upstream_cost && !u.suspect);
    cr_assert_float_eq(u.upstream_cost, 0.002, 1e-12);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,"
                 "\"cost_details\":{\"upstream_inference_cost\":null}}");
    cr_assert(!u.has_upstream_cost && !u.suspect);
    u = usage_of("{\"prompt_tokens\":3,\"completion_tokens\":4,"
                 "\"cost_details\":{\"upstream_inference_cost\":-3}}");
    cr_assert(!u.has_upstream_cost && u.suspect);
}

static struct dm_sse_api_error error_of(const char *body)
{
    struct dm_sse_api_error e;
    cr_assert_eq(dm_sse_parse_error(body, strlen(body), &e), 0, "%s", body);
    cr_assert(e.present);
    return e;
}

Test(sse_error, the_error_shapes_of_openai_vllm_ollama_litellm_and_fastapi)
{
    struct dm_sse_api_error e;
    /* OpenAI */
    e = error_of("{\"error\":{\"message\":\"Unrecognized request argument supplied: usage\","
                 "\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
    cr_assert_str_eq(e.message, "Unrecognized request argument supplied: usage");
    cr_assert_str_eq(e.type, "invalid_request_error");
    cr_assert_eq(e.code, 0);
    e = error_of("{\"error\":{\"message\":\"Incorrect API key\",\"type\":\"invalid_request_error\","
                 "\"code\":\"invalid_api_key\"}}");
    cr_assert_str_eq(e.type, "invalid_request_error", "type wins over a string code");
    /* vLLM: at the top level */
    e = error_of("{\"object\":\"error\",\"message\":\"maximum context length is 4096\","
                 "\"type\":\"BadRequestError\",\"param\":null,\"code\":400}");
    cr_assert_str_eq(e.message, "maximum context length is 4096");
    cr_assert_eq(e.code, 400);
    /* Ollama */
    e = error_of("{\"error\":\"model \\\"llama9\\\" not found, try pulling it first\"}");
    cr_assert(strstr(e.message, "not found"), "%s", e.message);
    /* LiteLLM: a numeric string code */
    e = error_of("{\"error\":{\"message\":\"Budget has been exceeded!\",\"type\":"
                 "\"budget_exceeded\",\"param\":null,\"code\":\"403\"}}");
    cr_assert_eq(e.code, 403);
    cr_assert_str_eq(e.type, "budget_exceeded");
    /* FastAPI (vLLM's validation) */
    e = error_of("{\"detail\":\"Field required: messages\"}");
    cr_assert_str_eq(e.message, "Field required: messages");
    e = error_of("{\"detail\":[{\"loc\":[\"body\",\"messages\"],\"msg\":\"Field required\"}]}");
    cr_assert(strstr(e.message, "Field required"), "%s", e.message);
    /* OpenRouter moderation */
    e = error_of("{\"error\":{\"code\":403,\"message\":\"flagged\",\"metadata\":{\"reasons\":"
                 "[\"violence\",\"harassment\"],\"flagged_input\":\"...\"}}}");
    cr_assert(e.flagged);
    cr_assert_str_eq(e.reasons, "violence, harassment");
    /* Not an error */
    cr_assert_eq(dm_sse_parse_error("{\"ok\":true}", 11, &e), DM_ERR_INVALID);
    cr_assert_eq(dm_sse_parse_error("[1]", 3, &e), DM_ERR_INVALID);
}

Test(sse_chat, a_vllm_error_event_inside_a_stream_is_an_error_with_its_code)
{
    struct dm_sse_chat c;
    struct dm_error err = {0};
    const char *ev = "data: {\"object\":\"error\",\"message\":\"engine died\",\"type\":"
                     "\"InternalServerError\",\"param\":null,\"code\":502}\n\n";
    dm_sse_chat_init(&c, 0);
    cr_assert_eq(dm_sse_chat_feed(&c, CHUNK1, strlen(CHUNK1), &err), 0);
    cr_assert_eq(dm_sse_chat_feed(&c, ev, strlen(ev), &err), DM_ERR_REMOTE);
    cr_assert_eq(c.error.code, 502);
    cr_assert_str_eq(c.error.message, "engine died");
    dm_sse_chat_free(&c);
}
