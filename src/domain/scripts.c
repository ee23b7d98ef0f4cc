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

/*
 * START
 * KEYS: 1 job hash, 2 job events, 3 global events, 4 jobs stream, 5 parked, 6 dead, 7 files
 * ARGV: 1 entry id, 2 worker, 3 group, 4 ts, 5 now ms, 6 job json, 7 invalid reason ("" = valid),
 *       8 global maxlen, 9 channel, 10 ttl s, 11 max attempts, 12 mode (new|claim|resume),
 *       13 jobId, 14 job events maxlen
 * Returns {'run', epoch, stage, attempts, job, plan, approved, branch, pr_url, commit, cancel,
 *          created, tokens, cost, event JSON, review, verification}
 *      or {'skip'|'dead'|'failed', reason}.
 * Every entry it acknowledges (skipped, dead, failed) is also deleted from the jobs stream, as
 * TRANSITION's `A` and DEAD do: a finished entry never stays there, so a consumer group
 * re-created from 0 after the job hash expired cannot run the job again. A dead letter keeps
 * the entry's `token`.
 */
const char dm_script_start[] = LUA_EMIT
    "local h = KEYS[1]\n"
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
    "if not redis.call('HGET', h, 'created') then redis.call('HSET', h, 'created', now) end\n"
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
    "  ev('dead_lettered', 'job moved to the dead-letter stream: ' .. reason, ',\"error\":' .. "
    "esc(reason))\n"
    "  finish()\n"
    "  return {'dead', reason}\n"
    "end\n"
    "if ARGV[7] ~= '' then\n"
    "  redis.call('HSET', h, 'status', 'failed', 'error', ARGV[7])\n"
    "  ev('failed', 'job refused: ' .. ARGV[7], ',\"error\":' .. esc(ARGV[7]))\n"
    "  finish()\n"
    "  return {'failed', ARGV[7]}\n"
    "end\n"
    "local prev = status\n"
    "redis.call('HSET', h, 'status', 'running')\n"
    "if mode == 'resume' and prev == 'approved' then\n"
    "  ev('resumed', 'approved job resumed by ' .. worker)\n"
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
 * Returns {seq, cancel, event JSON ('' without an event)} or the error "FENCED ...".
 */
const char dm_script_transition[] = LUA_EMIT
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
    "for i = 19, #ARGV, 2 do redis.call('HSET', h, ARGV[i], ARGV[i + 1]) end\n"
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
const char dm_script_approve[] = LUA_EMIT
    "local h = KEYS[1]\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if status ~= 'paused_approval' then\n"
    "  return redis.error_reply('NOTPARKED job is ' .. tostring(status or 'unknown'))\n"
    "end\n"
    "redis.call('HSET', h, 'status', 'approved', 'approved', '1', 'approved_by', ARGV[2], "
    "'approved_at', ARGV[3], 'updated', ARGV[4])\n"
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
const char dm_script_reject[] = LUA_EMIT
    "local h = KEYS[1]\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if status ~= 'paused_approval' then\n"
    "  return redis.error_reply('NOTPARKED job is ' .. tostring(status or 'unknown'))\n"
    "end\n"
    "local reason = ARGV[8]\n"
    "if reason == '' then reason = 'rejected by ' .. ARGV[2] end\n"
    "redis.call('HSET', h, 'status', 'rejected', 'error', reason, 'rejected_by', ARGV[2], "
    "'rejected_at', ARGV[3], 'updated', ARGV[4])\n"
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
const char dm_script_cancel[] = LUA_EMIT
    "local h = KEYS[1]\n"
    "local status = redis.call('HGET', h, 'status')\n"
    "if not status then return redis.error_reply('NOTFOUND no such job') end\n"
    "if TERMINAL[status] then return redis.error_reply('FINISHED job is ' .. status) end\n"
    "redis.call('HSET', h, 'cancel', '1', 'cancelled_by', ARGV[2], 'updated', ARGV[4])\n"
    "if status == 'paused_approval' or status == 'approved' then\n"
    "  redis.call('HSET', h, 'status', 'cancelled', 'error', 'cancelled by ' .. ARGV[2])\n"
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
const char dm_script_requeue[] = LUA_EMIT
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
    "    redis.call('HDEL', h, 'error', 'cancel')\n"
    "    for _, k in ipairs({h, jev, h .. ':files'}) do redis.call('PERSIST', k) end\n"
    "    emit(h, jev, gev, gev, jobid, 'retrying', 'requeued from dead letter ' .. ARGV[1] .. "
    "' by ' .. ARGV[5] .. ' as entry ' .. id, '', ARGV[4], ARGV[5], ARGV[6], ARGV[7])\n"
    "  end\n"
    "end\n"
    "return {id, jobid}\n";
