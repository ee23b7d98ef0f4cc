/*
 * retry: when a failed remote call is worth another attempt, and how long to wait before it.
 *
 *   - dm_retry_backoff_ms: the capped exponential backoff with jitter that the LLM client, the
 *     GitHub client and the Redis reconnect loop share. The caller brings the random number, so
 *     the rule itself is deterministic (and testable to the millisecond).
 *   - dm_llm_should_retry / dm_llm_backoff_ms: the OpenRouter client's retry decision (see
 *     dream/io/llm.h for the whole policy) and its backoff with a process-wide jitter source.
 *
 * Pure: no I/O. dm_retry_backoff_ms and dm_llm_should_retry run on any thread;
 * dm_llm_backoff_ms keeps an unsynchronised jitter state, so call it from one thread (the loop).
 */
#ifndef DREAM_RETRY_H
#define DREAM_RETRY_H

#include <stddef.h>
#include <stdint.h>

/* The wait before attempt number `attempt` + 1 (attempt >= 1 attempts have failed):
 * d = min(max_ms, base_ms * 2^(attempt-1)); returns d when d < 2, else d/2 + random % (d/2 + 1),
 * a value in [d/2, d]. Halving spreads replicas that failed together so they do not come back
 * in step. */
long long dm_retry_backoff_ms(long base_ms, long max_ms, int attempt, uint64_t random);

/* The LLM retry decision: for an attempt that ended with HTTP status (0: a transport failure,
 * with got_bytes telling whether reply bytes arrived), the error body and the Retry-After header
 * value (NULL if absent; seconds or an HTTP date, read relative to now_ms), returns 1 when the
 * call should be retried: 408, 429, 500, 502, 503, 504; a 402 whose
 * error.metadata.limit_source is "openrouter_in_flight_budget"; a transport failure before any
 * reply byte. *retry_after_ms receives the server's requested delay, or -1 when none was given
 * or it was unreadable. */
int dm_llm_should_retry(long status, int got_bytes, const char *body, size_t body_len,
                        const char *retry_after, long long now_ms, long long *retry_after_ms);

/* The LLM backoff before attempt number `attempt` + 1 (attempt >= 1) without Retry-After:
 * dm_retry_backoff_ms with a per-process xorshift jitter (seeded from the monotonic clock and
 * the pid, so replicas do not share one sequence). */
long long dm_llm_backoff_ms(long base_ms, long max_ms, int attempt);

/* For an error reported inside a 200 reply (an error chunk, or finish_reason "error" with an
 * error object, after the stream began): 1 when its code is one the same HTTP status would be
 * retried for (dm_llm_should_retry: 408, 429, 500, 502, 503, 504, a 402 of the in-flight
 * budget), 0 for a permanent one. OpenRouter documents that provider errors after the stream
 * started arrive this way. */
struct dm_sse_api_error;
int dm_llm_stream_error_retryable(const struct dm_sse_api_error *e);

#endif
