/*
 * scripts: Lua for Redis (see include/dream/domain/scripts.h). Every job write goes through one of
 * these, so state, events and the stream acknowledgement never come apart. Events are built
 * here (not in C) because `seq`, `tokensUsed` and `costUsd` come from the job hash at the moment
 * of the write. Pure.
 */
#include "dream/domain/scripts.h"

/* The scripts are longer than the 4095 characters ISO C promises; GCC and Clang take them. */
#pragma GCC diagnostic ignored "-Woverlength-strings"

/* Shared helpers, prepended to the scripts that emit events. */
#define LUA_EMIT                                                                                   \
    "local function esc(s) return cjson.encode(tostring(s)) end\n"                                 \
    "local TERMINAL = {complete=true, failed=true, cancelled=true, dead_lettered=true,\n"          \
    "                  rejected=true}\n"                                                           \
    "local function emit(h, jev, gev, chan, jobid, status, msg, extra, ts, worker, gmax, jmax)\n"  \
    "  local seq = redis.call('HINCRBY', h, 'seq', 1)\n"                                           \
    "  local tokens = redis.call('HGET', h, 'tokens') or '0'\n"                                    \
    "  local cost = redis.call('HGET', h, 'cost') or '0'\n"                                        \
    "  local ev = '{\"v\":1,\"jobId\":' .. esc(jobid) .. ',\"seq\":' .. seq ..\n"                  \
    "    ',\"status\":' .. esc(status) .. ',\"message\":' .. esc(msg) .. ',\"ts\":' .. esc(ts) "   \
    "..\n"                                                                                         \
    "    ',\"worker\":' .. esc(worker) .. ',\"tokensUsed\":' .. tokens .. ',\"costUsd\":' .. "     \
    "cost ..\n"                                                                                    \
    "    extra .. '}'\n"                                                                           \
    "  redis.call('XADD', jev, 'MAXLEN', '~', jmax, '*', 'event', ev)\n"                           \
    "  redis.call('XADD', gev, 'MAXLEN', '~', gmax, '*', 'event', ev)\n"                           \
    "  redis.call('PUBLISH', chan, ev)\n"                                                          \
    "  return seq, ev\n"                                                                           \
    "end\n"

/* The job index and the aggregate counters, prepended (after LUA_EMIT) to every script that
 * changes a job's status. The keys are derived from the prefix, which is the global events key
 * (KEYS[3] of START, TRANSITION, APPROVE, REJECT, CANCEL and RETRY: "<p>:events") without its
 * ":events"; they spell the schema of include/dream/core/keys.h (<p>:idx:*, <p>:stats:<hour>).
 * dm_index moves a job between the per-status sets (score: the change, ms) and counts the change
 * in the hour's hash; on a terminal status it also counts the run's and the last stage's
 * duration (log buckets: 4 per doubling) and trims the index by the TTL: the status set by
 * score, the creation, repository and user sets of members whose job hash has expired: up to two
 * windows of 32 members older than the TTL, from where the last look stopped (<p>:idx:trim, field:
 * the set's key, value: how many older members were found alive), so that jobs alive past the
 * TTL (parked, retried) never stop the trimming of the ones behind them. */
#define LUA_INDEX                                                                                  \
    "local function dm_prefix_of(gev) return string.sub(gev, 1, #gev - 7) end\n"                   \
    "local function dm_bucket(ms)\n"                                                               \
    "  if ms < 1 then ms = 1 end\n"                                                                \
    "  return math.floor(4 * math.log(ms) / math.log(2))\n"                                        \
    "end\n"                                                                                        \
    "local function dm_hour(P, now) return P .. ':stats:' .. math.floor(tonumber(now) / 3600000) " \
    "end\n"                                                                                        \
    "local function dm_trim_set(P, key, cut)\n"                                                    \
    "  local tk = P .. ':idx:trim'\n"                                                              \
    "  local pos = tonumber(redis.call('HGET', tk, key) or '0') or 0\n"                            \
    "  for _ = 1, 2 do\n"                                                                          \
    "    local old = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. cut, 'LIMIT', pos, 32)\n"     \
    "    local kept = 0\n"                                                                         \
    "    for _, id in ipairs(old) do\n"                                                            \
    "      if redis.call('EXISTS', P .. ':job:' .. id) == 0 then redis.call('ZREM', key, id)\n"    \
    "      else kept = kept + 1 end\n"                                                             \
    "    end\n"                                                                                    \
    "    if #old < 32 then pos = 0 break end\n"                                                    \
    "    pos = pos + kept\n"                                                                       \
    "  end\n"                                                                                      \
    "  if pos == 0 then redis.call('HDEL', tk, key) else redis.call('HSET', tk, key, pos) end\n"   \
    "end\n"                                                                                        \
    "local function dm_index(P, h, jobid, old, new, now, ttl)\n"                                   \
    "  if not new or old == new then return end\n"                                                 \
    "  now = tonumber(now)\n"                                                                      \
    "  ttl = tonumber(ttl) or 604800\n"                                                            \
    "  if old then redis.call('ZREM', P .. ':idx:status:' .. old, jobid) end\n"                    \
    "  local sk = P .. ':idx:status:' .. new\n"                                                    \
    "  redis.call('ZADD', sk, now, jobid)\n"                                                       \
    "  local hk = dm_hour(P, now)\n"                                                               \
    "  redis.call('HINCRBY', hk, 'status:' .. new, 1)\n"                                           \
    "  if TERMINAL[new] then\n"                                                                    \
    "    local cut = now - ttl * 1000\n"                                                           \
    "    redis.call('ZREMRANGEBYSCORE', sk, '-inf', '(' .. cut)\n"                                 \
    "    local run = tonumber(redis.call('HGET', h, 'run_at') or redis.call('HGET', h, "           \
    "'created') or '')\n"                                                                          \
    "    if run then redis.call('HINCRBY', hk, 'dur:' .. dm_bucket(now - run), 1) end\n"           \
    "    local st = redis.call('HGET', h, 'stage')\n"                                              \
    "    local sat = tonumber(redis.call('HGET', h, 'stage_at') or '')\n"                          \
    "    if st and sat then\n"                                                                     \
    "      redis.call('HINCRBY', hk, 'sdur:' .. st .. ':' .. dm_bucket(now - sat), 1)\n"           \
    "    end\n"                                                                                    \
    "    dm_trim_set(P, P .. ':idx:created', cut)\n"                                               \
    "    local repo, user = redis.call('HGET', h, 'repo'), redis.call('HGET', h, 'user')\n"        \
    "    if repo then dm_trim_set(P, P .. ':idx:repo:' .. repo, cut) end\n"                        \
    "    if user then dm_trim_set(P, P .. ':idx:user:' .. user, cut) end\n"                        \
    "  end\n"                                                                                      \
    "  redis.call('EXPIRE', hk, ttl + 3600)\n"                                                     \
    "end\n"

/*
 * START
 * KEYS: 1 job hash, 2 job events, 3 global events, 4 jobs stream, 5 parked, 6 dead, 7 files
 * ARGV: 1 entry id, 2 worker, 3 group, 4 ts, 5 now ms, 6 job json, 7 invalid reason ("" = valid),
 *       8 global maxlen, 9 channel, 10 ttl s, 11 max attempts, 12 mode (new|claim|resume),
 *       13 jobId, 14 job events maxlen, 15 "1" when the entry's token was verified (signed)
 * Mode retry (a `type=retry` entry) runs only a job in retry_requested whose retry_entry is this
 * entry (the RETRY script wrote both). A new job enters the index (created, repo, user).
 * Returns {'run', epoch, stage, attempts, job, plan, approved, branch, pr_url, commit, cancel,
 *          created, tokens, cost, event JSON, review, verification}
 *      or {'skip'|'dead'|'failed', reason}.
 * Every entry it acknowledges (skipped, dead, failed) is also deleted from the jobs stream, as
 * TRANSITION's `A` and DEAD do: a finished entry never stays there, so a consumer group
 * re-created from 0 after the job hash expired cannot run the job again. A dead letter keeps
 * the entry's `token`.
 */
const char dm_script_start[] = LUA_EMIT LUA_INDEX
    "local h = KEYS[1]\n"
    "local P = dm_prefix_of(KEYS[3])\n"
    "local entry, worker, group, ts, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local gmax, chan, ttl, maxatt, mode = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11]), "
    "ARGV[12]\n"
    "local jobid, jmax = ARGV[13], ARGV[14]\n"
    "local last = ''\n"
    "local function ev(status, msg, extra)\n"
    "  local seq, e = emit(h, KEYS[2], KEYS[3], chan, jobid, status, msg, extra or '', ts, worker, "
    "gmax, jmax)\n"
    "  last = e\n"
    "  return seq\n"
    "end\n"
    "local function ackdel()\n"
    "  redis.call('XACK', KEYS[4], group, entry)\n"
    "  redis.call('XDEL', KEYS[4], entry)\n"
    "end\n"
    "local function finish()\n"
    "  ackdel()\n"
    "  for i = 1, 2 do redis.call('EXPIRE', KEYS[i], ttl) end\n"
    "  redis.call('EXPIRE', KEYS[7], ttl)\n"
    "end\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "local cur = redis.call('HGET', h, 'entry')\n"
    "local same = (cur == entry)\n"
    "if mode == 'resume' and not same then\n"
    "  if status ~= 'approved' then\n"
    "    ackdel()\n"
    "    return {'skip', 'resume ignored: job is ' .. tostring(status or 'unknown')}\n"
    "  end\n"
    "  redis.call('HSET', h, 'attempts', 0)\n"
    "elseif mode == 'retry' and not same then\n"
    "  if status ~= 'retry_requested' or redis.call('HGET', h, 'retry_entry') ~= entry then\n"
    "    redis.call('XACK', KEYS[4], group, entry)\n"
    "    return {'skip', 'retry ignored: job is ' .. tostring(status or 'unknown')}\n"
    "  end\n"
    "elseif status and TERMINAL[status] then\n"
    "  ackdel()\n"
    "  ev('duplicate', 'job already finished as ' .. status .. '; entry ' .. entry .. "
    "' acknowledged without running')\n"
    "  return {'skip', 'already finished as ' .. status}\n"
    "elseif (status == 'paused_approval' or status == 'approved') and not same then\n"
    "  ackdel()\n"
    "  ev('duplicate', 'job is ' .. status .. '; entry ' .. entry .. ' acknowledged without "
    "running')\n"
    "  return {'skip', 'job is ' .. status}\n"
    "elseif status and cur and not same then\n"
    "  local p = redis.call('XPENDING', KEYS[4], group, cur, cur, 1)\n"
    "  if #p > 0 then\n"
    "    ackdel()\n"
    "    ev('duplicate', 'job is already running under entry ' .. cur .. '; entry ' .. entry .. "
    "' refused')\n"
    "    return {'skip', 'already running under entry ' .. cur}\n"
    "  end\n"
    "end\n"
    "local attempts = redis.call('HINCRBY', h, 'attempts', 1)\n"
    "local epoch = redis.call('HINCRBY', h, 'epoch', 1)\n"
    "local job = ARGV[6]\n"
    "if job == '' then job = redis.call('HGET', h, 'job') or '' end\n"
    "redis.call('HSET', h, 'entry', entry, 'owner', worker, 'updated', now)\n"
    "if not redis.call('HGET', h, 'created') then\n"
    "  redis.call('HSET', h, 'created', now)\n"
    "  redis.call('ZADD', P .. ':idx:created', now, jobid)\n"
    "  local ok, o = pcall(cjson.decode, job)\n"
    "  if ok and type(o) == 'table' then\n"
    "    if type(o.repoOwner) == 'string' and type(o.repoName) == 'string' and\n"
    "       #o.repoOwner + #o.repoName < 200 then\n"
    "      local r = o.repoOwner .. '/' .. o.repoName\n"
    "      redis.call('HSET', h, 'repo', r)\n"
    "      redis.call('ZADD', P .. ':idx:repo:' .. r, now, jobid)\n"
    "    end\n"
    "    if type(o.userId) == 'string' and #o.userId <= 128 then\n"
    "      redis.call('HSET', h, 'user', o.userId)\n"
    "      redis.call('ZADD', P .. ':idx:user:' .. o.userId, now, jobid)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if ARGV[15] == '1' then redis.call('HSET', h, 'signed', '1') end\n"
    "if job ~= '' then redis.call('HSET', h, 'job', job) end\n"
    "if attempts > maxatt then\n"
    "  local reason = 'delivered ' .. attempts .. ' times (max ' .. maxatt .. ')'\n"
    "  local dl = {'entry', entry, 'job', job, 'reason', reason, 'attempts', attempts, 'ts', ts}\n"
    "  local o = redis.call('XRANGE', KEYS[4], entry, entry)\n"
    "  for i = 1, (#o > 0 and #o[1][2] or 0), 2 do\n"
    "    if o[1][2][i] == 'token' then table.insert(dl, 'token'); table.insert(dl, o[1][2][i + 1]) "
    "end\n"
    "  end\n"
    "  redis.call('XADD', KEYS[6], 'MAXLEN', '~', gmax, '*', unpack(dl))\n"
    "  redis.call('HSET', h, 'status', 'dead_lettered', 'error', reason)\n"
    "  dm_index(P, h, jobid, status, 'dead_lettered', now, ttl)\n"
    "  ev('dead_lettered', 'job moved to the dead-letter stream: ' .. reason, ',\"error\":' .. "
    "esc(reason))\n"
    "  finish()\n"
    "  return {'dead', reason}\n"
    "end\n"
    "if ARGV[7] ~= '' then\n"
    "  redis.call('HSET', h, 'status', 'failed', 'error', ARGV[7])\n"
    "  dm_index(P, h, jobid, status, 'failed', now, ttl)\n"
    "  ev('failed', 'job refused: ' .. ARGV[7], ',\"error\":' .. esc(ARGV[7]))\n"
    "  finish()\n"
    "  return {'failed', ARGV[7]}\n"
    "end\n"
    "local prev = status\n"
    "redis.call('HSET', h, 'status', 'running', 'stage_at', now)\n"
    "if not prev or prev == 'retry_requested' or prev == 'requeued' then\n"
    "  redis.call('HSET', h, 'run_at', now)\n"
    "end\n"
    "dm_index(P, h, jobid, prev, 'running', now, ttl)\n"
    "if mode == 'resume' and prev == 'approved' then\n"
    "  ev('resumed', 'approved job resumed by ' .. worker)\n"
    "elseif prev == 'retry_requested' then\n"
    "  ev('started', 'retry ' .. (redis.call('HGET', h, 'retries') or '1') .. ' started by ' .. "
    "worker)\n"
    "elseif attempts == 1 and not prev then\n"
    "  ev('started', 'build started')\n"
    "else\n"
    "  ev('retrying', 'attempt ' .. attempts .. ' of ' .. maxatt .. ' taken over by ' .. worker)\n"
    "end\n"
    "local function g(f) return redis.call('HGET', h, f) or '' end\n"
    "return {'run', tostring(epoch), g('stage'), tostring(attempts), job, g('plan'), "
    "g('approved'), g('branch'), g('pr_url'), g('commit'), g('cancel'), g('created'), "
    "g('tokens'), g('cost'), last, g('review'), g('verification')}\n";

/*
 * TRANSITION
 * KEYS: 1 job hash, 2 job events, 3 global events, 4 jobs stream, 5 parked, 6 files
 * ARGV: 1 epoch, 2 op id, 3 event status ("" = none), 4 message, 5 extra JSON fragment, 6 ts,
 *       7 worker, 8 flags (A ack and delete the entry, P park, U unpark, T terminal: TTL; the
 *       engine spells enum
 *       dm_job_write_flag this way), 9 entry id, 10 group,
 *       11 global maxlen, 12 channel, 13 ttl s, 14 job events maxlen, 15 now ms, 16 jobId,
 *       17 file path ("" = none), 18 file content, 19.. field/value pairs for the job hash
 * A change of `status`, `stage`, `tokens` or `cost` also updates the index and the hour's
 * counters (LUA_INDEX; spend by the hash's `model` and `repo`).
 * Returns {seq, cancel, event JSON ('' without an event)} or the error "FENCED ...".
 */
const char dm_script_transition[] = LUA_EMIT LUA_INDEX
    "local h = KEYS[1]\n"
    "local epoch = redis.call('HGET', h, 'epoch')\n"
    "if epoch ~= ARGV[1] then\n"
    "  return redis.error_reply('FENCED job epoch is ' .. tostring(epoch) .. ', writer has ' .. "
    "ARGV[1])\n"
    "end\n"
    "if redis.call('HGET', h, 'last_op') == ARGV[2] then\n"
    "  return {tonumber(redis.call('HGET', h, 'seq') or '0'), redis.call('HGET', h, 'cancel') or "
    "''}\n"
    "end\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if status and TERMINAL[status] then\n"
    "  return redis.error_reply('FENCED job already ' .. status)\n"
    "end\n"
    "if ARGV[17] ~= '' then redis.call('HSET', KEYS[6], ARGV[17], ARGV[18]) end\n"
    "local ostage = redis.call('HGET', h, 'stage')\n"
    "local otok = tonumber(redis.call('HGET', h, 'tokens') or '0') or 0\n"
    "local ocost = tonumber(redis.call('HGET', h, 'cost') or '0') or 0\n"
    "for i = 19, #ARGV, 2 do redis.call('HSET', h, ARGV[i], ARGV[i + 1]) end\n"
    "local P = dm_prefix_of(KEYS[3])\n"
    "local hk = dm_hour(P, ARGV[15])\n"
    "local nstage = redis.call('HGET', h, 'stage')\n"
    "if nstage ~= ostage then\n"
    "  local sat = tonumber(redis.call('HGET', h, 'stage_at') or '')\n"
    "  if ostage and sat then\n"
    "    redis.call('HINCRBY', hk, 'sdur:' .. ostage .. ':' .. dm_bucket(tonumber(ARGV[15]) - "
    "sat), 1)\n"
    "  end\n"
    "  redis.call('HSET', h, 'stage_at', ARGV[15])\n"
    "end\n"
    "local dt = (tonumber(redis.call('HGET', h, 'tokens') or '0') or 0) - otok\n"
    "local dc = (tonumber(redis.call('HGET', h, 'cost') or '0') or 0) - ocost\n"
    "if dt > 0 or dc > 0 then\n"
    "  local m = redis.call('HGET', h, 'model') or '-'\n"
    "  local r = redis.call('HGET', h, 'repo') or '-'\n"
    "  if dt > 0 then\n"
    "    for _, f in ipairs({'tokens', 'tokens:model:' .. m, 'tokens:repo:' .. r}) do\n"
    "      redis.call('HINCRBY', hk, f, dt)\n"
    "    end\n"
    "  end\n"
    "  if dc > 0 then\n"
    "    for _, f in ipairs({'cost', 'cost:model:' .. m, 'cost:repo:' .. r}) do\n"
    "      redis.call('HINCRBYFLOAT', hk, f, string.format('%.17g', dc))\n"
    "    end\n"
    "  end\n"
    "  redis.call('EXPIRE', hk, tonumber(ARGV[13]) + 3600)\n"
    "end\n"
    "dm_index(P, h, ARGV[16], status, redis.call('HGET', h, 'status'), ARGV[15], ARGV[13])\n"
    "redis.call('HSET', h, 'last_op', ARGV[2], 'updated', ARGV[15])\n"
    "local seq, ev = 0, ''\n"
    "if ARGV[3] ~= '' then\n"
    "  seq, ev = emit(h, KEYS[2], KEYS[3], ARGV[12], ARGV[16], ARGV[3], ARGV[4], ARGV[5], ARGV[6], "
    "ARGV[7], ARGV[11], ARGV[14])\n"
    "end\n"
    "local flags = ARGV[8]\n"
    "if string.find(flags, 'A', 1, true) then\n"
    "  redis.call('XACK', KEYS[4], ARGV[10], ARGV[9])\n"
    "  redis.call('XDEL', KEYS[4], ARGV[9])\n"
    "end\n"
    "if string.find(flags, 'P', 1, true) then redis.call('ZADD', KEYS[5], ARGV[15], ARGV[16]) "
    "end\n"
    "if string.find(flags, 'U', 1, true) then redis.call('ZREM', KEYS[5], ARGV[16]) end\n"
    "if string.find(flags, 'T', 1, true) then\n"
    "  redis.call('EXPIRE', h, ARGV[13])\n"
    "  redis.call('EXPIRE', KEYS[2], ARGV[13])\n"
    "  redis.call('EXPIRE', KEYS[6], ARGV[13])\n"
    "end\n"
    "return {seq, redis.call('HGET', h, 'cancel') or '', ev}\n";

/*
 * DEAD
 * KEYS: 1 dead stream, 2 jobs stream
 * ARGV: 1 entry id, 2 group, 3 raw job (may be empty), 4 reason, 5 attempts, 6 ts, 7 maxlen,
 *       8 "1" when the replica runs in signed mode (else "")
 * The dead letter keeps the entry's `token` while the entry still exists, and `signed 1` from a
 * signed-mode replica (dreamctl then refuses a requeue without a token). The entry is
 * acknowledged and deleted: finished entries never stay in the jobs stream, so a re-created
 * consumer group cannot deliver them again.
 */
const char dm_script_dead[] =
    "local dl = {'entry', ARGV[1], 'job', ARGV[3], 'reason', ARGV[4], 'attempts', ARGV[5], "
    "'ts', ARGV[6]}\n"
    "local o = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])\n"
    "for i = 1, (#o > 0 and #o[1][2] or 0), 2 do\n"
    "  if o[1][2][i] == 'token' then table.insert(dl, 'token'); table.insert(dl, o[1][2][i + 1]) "
    "end\n"
    "end\n"
    "if ARGV[8] == '1' then table.insert(dl, 'signed'); table.insert(dl, '1') end\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[7], '*', unpack(dl))\n"
    "local n = redis.call('XACK', KEYS[2], ARGV[2], ARGV[1])\n"
    "redis.call('XDEL', KEYS[2], ARGV[1])\n"
    "return n\n";

/*
 * ORPHAN
 * KEYS: 1 dead stream, 2 jobs stream, 3 global events
 * ARGV: 1 entry id, 2 group, 3 reason, 4 ts, 5 now ms, 6 global maxlen, 7 channel, 8 ttl s,
 *       9 job events maxlen, 10 "1" when the replica runs in signed mode (else ""), 11 worker
 * An entry the reclaim sweep found deleted from the stream while pending for a dead consumer
 * (XAUTOCLAIM's third reply; an operator's XTRIM): nobody holds its job any more. The job whose
 * hash names this entry (`entry`, or `retry_entry` of a queued retry), looked up among the
 * unfinished status sets of the index (at most 1,000 members each), ends `dead_lettered`: epoch
 * bumped (a zombie owner is fenced), an event, the TTL; the dead letter carries the job JSON from
 * the hash, so `dreamctl dead requeue` runs it again. Without such a job the dead letter has an
 * empty job. The entry is acknowledged. Returns the jobId or "".
 */
const char dm_script_orphan[] = LUA_EMIT LUA_INDEX
    "local entry, P = ARGV[1], dm_prefix_of(KEYS[3])\n"
    "local found, old = nil, nil\n"
    "for _, st in ipairs({'running', 'retry_requested', 'requeued', 'approved'}) do\n"
    "  for _, id in ipairs(redis.call('ZRANGE', P .. ':idx:status:' .. st, 0, 999)) do\n"
    "    local f = redis.call('HMGET', P .. ':job:' .. id, 'entry', 'retry_entry', 'status')\n"
    "    if (f[1] == entry or f[2] == entry) and f[3] and not TERMINAL[f[3]] then\n"
    "      found, old = id, f[3]\n"
    "      break\n"
    "    end\n"
    "  end\n"
    "  if found then break end\n"
    "end\n"
    "local job = ''\n"
    "if found then\n"
    "  local h = P .. ':job:' .. found\n"
    "  job = redis.call('HGET', h, 'job') or ''\n"
    "  redis.call('HINCRBY', h, 'epoch', 1)\n"
    "  redis.call('HSET', h, 'status', 'dead_lettered', 'error', ARGV[3], 'updated', ARGV[5])\n"
    "  dm_index(P, h, found, old, 'dead_lettered', ARGV[5], ARGV[8])\n"
    "  emit(h, h .. ':events', KEYS[3], ARGV[7], found, 'dead_lettered',\n"
    "       'job moved to the dead-letter stream: ' .. ARGV[3], ',\"error\":' .. esc(ARGV[3]),\n"
    "       ARGV[4], ARGV[11], ARGV[6], ARGV[9])\n"
    "  redis.call('ZREM', P .. ':parked', found)\n"
    "  for _, k in ipairs({h, h .. ':events', h .. ':files'}) do redis.call('EXPIRE', k, ARGV[8]) "
    "end\n"
    "end\n"
    "local dl = {'entry', entry, 'job', job, 'reason', ARGV[3], 'attempts', '1', 'ts', ARGV[4]}\n"
    "if found then table.insert(dl, 'jobId'); table.insert(dl, found) end\n"
    "if ARGV[10] == '1' then table.insert(dl, 'signed'); table.insert(dl, '1') end\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', unpack(dl))\n"
    "redis.call('XACK', KEYS[2], ARGV[2], entry)\n"
    "redis.call('XDEL', KEYS[2], entry)\n"
    "return found or ''\n";

/*
 * HEARTBEAT
 * KEYS: 1 jobs stream
 * ARGV: 1 group, 2 consumer, 3.. entry ids this consumer believes it holds
 * Resets the idle time of each entry still pending for this consumer. Returns {lost, gone}:
 * lost = entries no longer pending for this consumer (taken over), gone = entries still pending
 * for it but deleted from the stream (an operator's XTRIM): their jobs must end, not vanish.
 */
const char dm_script_heartbeat[] =
    "local lost = {}\n"
    "local gone = {}\n"
    "for i = 3, #ARGV do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)\n"
    "  if #p == 1 and p[1][2] == ARGV[2] then\n"
    "    if #redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i]) == 0 then\n"
    "      table.insert(gone, ARGV[i])\n"
    "    else\n"
    "      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')\n"
    "    end\n"
    "  else\n"
    "    table.insert(lost, ARGV[i])\n"
    "  end\n"
    "end\n"
    "return {lost, gone}\n";

/*
 * APPROVE
 * KEYS: 1 job hash, 2 job events, 3 global events, 4 jobs stream, 5 parked
 * ARGV: 1 jobId, 2 approver, 3 ts, 4 now ms, 5 channel, 6 global maxlen, 7 job events maxlen
 * Only a parked job: records who and when, emits `approved`, enqueues `type=resume id=<jobId>`.
 */
const char dm_script_approve[] = LUA_EMIT LUA_INDEX
    "local h = KEYS[1]\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if status ~= 'paused_approval' then\n"
    "  return redis.error_reply('NOTPARKED job is ' .. tostring(status or 'unknown'))\n"
    "end\n"
    "redis.call('HSET', h, 'status', 'approved', 'approved', '1', 'approved_by', ARGV[2], "
    "'approved_at', ARGV[3], 'updated', ARGV[4])\n"
    "dm_index(dm_prefix_of(KEYS[3]), h, ARGV[1], status, 'approved', ARGV[4], nil)\n"
    "redis.call('ZREM', KEYS[5], ARGV[1])\n"
    "local seq = emit(h, KEYS[2], KEYS[3], ARGV[5], ARGV[1], 'approved', 'approved by ' .. "
    "ARGV[2], ',\"step\":' .. esc(ARGV[2]), ARGV[3], ARGV[2], ARGV[6], ARGV[7])\n"
    "local id = redis.call('XADD', KEYS[4], '*', 'type', 'resume', 'id', ARGV[1])\n"
    "return {seq, id}\n";

/*
 * REJECT
 * KEYS: 1 job hash, 2 job events, 3 global events, 4 parked, 5 files
 * ARGV: 1 jobId, 2 approver, 3 ts, 4 now ms, 5 channel, 6 global maxlen, 7 job events maxlen,
 *       8 reason, 9 ttl
 */
const char dm_script_reject[] = LUA_EMIT LUA_INDEX
    "local h = KEYS[1]\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if status ~= 'paused_approval' then\n"
    "  return redis.error_reply('NOTPARKED job is ' .. tostring(status or 'unknown'))\n"
    "end\n"
    "local reason = ARGV[8]\n"
    "if reason == '' then reason = 'rejected by ' .. ARGV[2] end\n"
    "redis.call('HSET', h, 'status', 'rejected', 'error', reason, 'rejected_by', ARGV[2], "
    "'rejected_at', ARGV[3], 'updated', ARGV[4])\n"
    "dm_index(dm_prefix_of(KEYS[3]), h, ARGV[1], status, 'rejected', ARGV[4], ARGV[9])\n"
    "redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "local seq = emit(h, KEYS[2], KEYS[3], ARGV[5], ARGV[1], 'rejected', reason, ',\"error\":' "
    ".. esc(reason), ARGV[3], ARGV[2], ARGV[6], ARGV[7])\n"
    "for _, k in ipairs({h, KEYS[2], KEYS[5]}) do redis.call('EXPIRE', k, ARGV[9]) end\n"
    "return {seq}\n";

/*
 * CANCEL
 * KEYS: 1 job hash, 2 job events, 3 global events, 4 parked, 5 files
 * ARGV: 1 jobId, 2 who, 3 ts, 4 now ms, 5 events channel, 6 global maxlen, 7 job events maxlen,
 *       8 ttl, 9 control channel
 * A parked or approved-but-not-resumed job ends `cancelled` at once; a running one gets the
 * durable flag and a broadcast so its worker stops at the next stage boundary.
 */
const char dm_script_cancel[] = LUA_EMIT LUA_INDEX
    "local h = KEYS[1]\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if not status then return redis.error_reply('NOTFOUND no such job') end\n"
    "if TERMINAL[status] then return redis.error_reply('FINISHED job is ' .. status) end\n"
    "redis.call('HSET', h, 'cancel', '1', 'cancelled_by', ARGV[2], 'updated', ARGV[4])\n"
    "if status == 'paused_approval' or status == 'approved' then\n"
    "  redis.call('HSET', h, 'status', 'cancelled', 'error', 'cancelled by ' .. ARGV[2])\n"
    "  dm_index(dm_prefix_of(KEYS[3]), h, ARGV[1], status, 'cancelled', ARGV[4], ARGV[8])\n"
    "  redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "  emit(h, KEYS[2], KEYS[3], ARGV[5], ARGV[1], 'cancelled', 'cancelled by ' .. ARGV[2], '', "
    "ARGV[3], ARGV[2], ARGV[6], ARGV[7])\n"
    "  for _, k in ipairs({h, KEYS[2], KEYS[5]}) do redis.call('EXPIRE', k, ARGV[8]) end\n"
    "  return 'cancelled'\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[9], cjson.encode({cancel = ARGV[1]}))\n"
    "return 'requested'\n";

/*
 * REQUEUE
 * KEYS: 1 dead stream, 2 jobs stream
 * ARGV: 1 dead entry id, 2 key prefix ("dream"), 3 now ms, 4 ts, 5 who, 6 global maxlen,
 *       7 job events maxlen, 8 a fresh token ("" or absent = none)
 * An operator's explicit "run again": adds the dead letter's job back as a new build entry
 * (with the fresh token; else the dead letter's `token`; else the original entry's while the
 * jobs stream still holds that entry: dead letters written before tokens were kept) and deletes
 * the dead letter. When the job's hash (found through the job JSON's jobId) says the job
 * finished, it is reset so the engine runs it instead of answering `duplicate`: status
 * `requeued`, attempts 0, error and cancel cleared, TTLs removed, and a `retrying` event says
 * who requeued it (so a watcher does not stop at the old terminal event). The job resumes at its
 * recorded stage with its checkpointed files.
 * The job's keys are derived here from the prefix (the jobId is known only inside Redis); they
 * spell the schema of include/dream/core/keys.h: <p>:job:<id>, its :events and :files.
 * Returns {new entry id, jobId or ""}, or the errors "NOTFOUND ..." / "EMPTY ...".
 */
const char dm_script_requeue[] = LUA_EMIT LUA_INDEX
    "local e = redis.pcall('XRANGE', KEYS[1], ARGV[1], ARGV[1])\n"
    "if type(e) ~= 'table' or e.err or #e == 0 then\n"
    "  return redis.error_reply('NOTFOUND no such dead letter: ' .. ARGV[1])\n"
    "end\n"
    "local f = e[1][2]\n"
    "local job, entry, token = '', '', nil\n"
    "for i = 1, #f, 2 do\n"
    "  if f[i] == 'job' then job = f[i + 1] elseif f[i] == 'entry' then entry = f[i + 1]\n"
    "  elseif f[i] == 'token' then token = f[i + 1] end\n"
    "end\n"
    "if job == '' then return redis.error_reply('EMPTY dead letter has no job to requeue') end\n"
    "if (ARGV[8] or '') ~= '' then token = ARGV[8] end\n"
    "if not token and entry ~= '' then\n"
    "  local o = redis.pcall('XRANGE', KEYS[2], entry, entry)\n"
    "  if type(o) == 'table' and o.err == nil and #o > 0 then\n"
    "    local of = o[1][2]\n"
    "    for i = 1, #of, 2 do if of[i] == 'token' then token = of[i + 1] end end\n"
    "  end\n"
    "end\n"
    "local id\n"
    "if token then\n"
    "  id = redis.call('XADD', KEYS[2], '*', 'type', 'build', 'job', job, 'token', token)\n"
    "else\n"
    "  id = redis.call('XADD', KEYS[2], '*', 'type', 'build', 'job', job)\n"
    "end\n"
    "redis.call('XDEL', KEYS[1], ARGV[1])\n"
    "local jobid = ''\n"
    "local ok, obj = pcall(cjson.decode, job)\n"
    "if ok and type(obj) == 'table' and type(obj.jobId) == 'string' and #obj.jobId <= 128 and\n"
    "   string.match(obj.jobId, '^[%w][%w%._%-]*$') then\n"
    "  jobid = obj.jobId\n"
    "end\n"
    "if jobid ~= '' then\n"
    "  local h = ARGV[2] .. ':job:' .. jobid\n"
    "  local jev, gev = h .. ':events', ARGV[2] .. ':events'\n"
    "  local status = redis.call('HGET', h, 'status')\n"
    "  if status and TERMINAL[status] then\n"
    "    redis.call('HSET', h, 'status', 'requeued', 'attempts', 0, 'updated', ARGV[3], "
    "'requeued_by', ARGV[5], 'requeued_at', ARGV[4])\n"
    "    dm_index(ARGV[2], h, jobid, status, 'requeued', ARGV[3], nil)\n"
    "    redis.call('HDEL', h, 'error', 'cancel')\n"
    "    for _, k in ipairs({h, jev, h .. ':files'}) do redis.call('PERSIST', k) end\n"
    "    emit(h, jev, gev, gev, jobid, 'retrying', 'requeued from dead letter ' .. ARGV[1] .. "
    "' by ' .. ARGV[5] .. ' as entry ' .. id, '', ARGV[4], ARGV[5], ARGV[6], ARGV[7])\n"
    "  end\n"
    "end\n"
    "return {id, jobid}\n";

/*
 * RETRY
 * KEYS: 1 job hash, 2 job events, 3 global events, 4 jobs stream, 5 files
 * ARGV: 1 jobId, 2 who, 3 ts, 4 now ms, 5 events channel, 6 global maxlen, 7 job events maxlen,
 *       8 force ("1": a rejected job, or one whose retry is already queued), 9 from stage (""
 *       = the recorded one), 10 regenerate ("1": the checkpointed files are dropped), 11 token
 *       ("" = none)
 * Only a job that ended failed, cancelled or dead_lettered (rejected: with force). A signed job
 * (START recorded `signed`) needs a token. Bumps `epoch` (a writer of the ended run still at
 * work is FENCED, not mixed into the retry). Sets status retry_requested, attempts 0, the stage,
 * `retries` (+1), retried_by/at, retry_at, retry_entry; clears error and cancel; removes the
 * TTLs; emits `retry_requested` (seq keeps growing) and adds `type retry id <jobId> [token]`.
 * --from-stage plan also drops the plan and the files; regenerate from a stage after generate
 * goes back to generate. Returns {seq, entry id, retries, stage} or the errors "NOTFOUND",
 * "REJECTED", "PENDING", "NOTRETRYABLE", "TOKEN", "EMPTY" with the reason.
 */
const char dm_script_retry[] = LUA_EMIT LUA_INDEX
    "local h = KEYS[1]\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if not status then return redis.error_reply('NOTFOUND no such job') end\n"
    "local force = ARGV[8] == '1'\n"
    "local ok = {failed = true, cancelled = true, dead_lettered = true}\n"
    "if not ok[status] then\n"
    "  if status == 'rejected' and not force then\n"
    "    return redis.error_reply('REJECTED job was rejected by an approver; --force retries it')\n"
    "  elseif status == 'retry_requested' and not force then\n"
    "    return redis.error_reply('PENDING a retry is already queued (--force queues another)')\n"
    "  elseif status ~= 'rejected' and status ~= 'retry_requested' then\n"
    "    return redis.error_reply('NOTRETRYABLE job is ' .. status)\n"
    "  end\n"
    "end\n"
    "if redis.call('HGET', h, 'signed') == '1' and ARGV[11] == '' then\n"
    "  return redis.error_reply('TOKEN job was signed: a retry needs a fresh token (--token JWT, ' "
    "..\n"
    "    'or DREAM_SIGN_SECRET to sign one)')\n"
    "end\n"
    "if (redis.call('HGET', h, 'job') or '') == '' then\n"
    "  return redis.error_reply('EMPTY job has no stored job to run again')\n"
    "end\n"
    "local stage = redis.call('HGET', h, 'stage') or 'plan'\n"
    "local later = {review = true, gate = true, push = true, pr = true}\n"
    "if ARGV[9] ~= '' then stage = ARGV[9] end\n"
    "if ARGV[9] == 'plan' then\n"
    "  redis.call('HDEL', h, 'plan')\n"
    "  redis.call('DEL', KEYS[5])\n"
    "elseif ARGV[10] == '1' then\n"
    "  redis.call('DEL', KEYS[5])\n"
    "  if later[stage] then stage = 'generate' end\n"
    "end\n"
    "redis.call('HINCRBY', h, 'epoch', 1)\n"
    "local n = redis.call('HINCRBY', h, 'retries', 1)\n"
    "redis.call('HSET', h, 'status', 'retry_requested', 'attempts', 0, 'stage', stage,\n"
    "  'updated', ARGV[4], 'retried_by', ARGV[2], 'retried_at', ARGV[3], 'retry_at', ARGV[4])\n"
    "redis.call('HDEL', h, 'error', 'cancel')\n"
    "for _, k in ipairs({h, KEYS[2], KEYS[5]}) do redis.call('PERSIST', k) end\n"
    "local P = dm_prefix_of(KEYS[3])\n"
    "dm_index(P, h, ARGV[1], status, 'retry_requested', ARGV[4], nil)\n"
    "local how = ''\n"
    "if ARGV[10] == '1' then how = ', files regenerated' end\n"
    "local seq = emit(h, KEYS[2], KEYS[3], ARGV[5], ARGV[1], 'retry_requested', 'retry ' .. n ..\n"
    "  ' of a ' .. status .. ' job requested by ' .. ARGV[2] .. ' from stage ' .. stage .. how,\n"
    "  ',\"step\":' .. esc(stage) .. ',\"retry\":' .. n, ARGV[3], ARGV[2], ARGV[6], ARGV[7])\n"
    "local id\n"
    "if ARGV[11] ~= '' then\n"
    "  id = redis.call('XADD', KEYS[4], '*', 'type', 'retry', 'id', ARGV[1], 'token', ARGV[11])\n"
    "else\n"
    "  id = redis.call('XADD', KEYS[4], '*', 'type', 'retry', 'id', ARGV[1])\n"
    "end\n"
    "redis.call('HSET', h, 'retry_entry', id)\n"
    "return {seq, id, n, stage}\n";
