// One operation under a fixed number of VUs: `k6 run -e BENCH_SPEC=spec.json op.js`.
// The spec (written by scripts/bench/hot.py): url, method, headers, body, expect (status),
// vus, warmup_s, duration_s, out (summary JSON path), `stripe` (optional: {secret, prefix, event}:
// each iteration POSTs a distinct Stripe event signed with the secret), `rate` (optional: the measured phase then
// sends that many requests a second, whatever their latency, instead of `vus` in a loop), and for creates `slots`: the body's
// starts_at and worker_ids come from a distinct slot per iteration (10 cleaners x `per_day` starts
// a day from `first_day`), so no request conflicts with another.
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import crypto from 'k6/crypto';

const spec = JSON.parse(open(__ENV.BENCH_SPEC));

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  scenarios: {
    warmup: {
      executor: 'constant-vus', vus: spec.vus, duration: `${spec.warmup_s}s`, gracefulStop: '5s',
      tags: { phase: 'warmup' },
    },
    measure: Object.assign(
      spec.rate
        ? { executor: 'constant-arrival-rate', rate: Math.max(1, Math.round(spec.rate)), timeUnit: '1s',
            preAllocatedVUs: spec.vus, maxVUs: spec.vus * 2 }
        : { executor: 'constant-vus', vus: spec.vus },
      { duration: `${spec.duration_s}s`, startTime: `${spec.warmup_s + 1}s`, gracefulStop: '10s',
        tags: { phase: 'measure' } },
    ),
  },
  // Never failing: they only make k6 keep the measure phase's own submetrics.
  thresholds: {
    'http_reqs{phase:measure}': ['count>=0'],
    'http_req_duration{phase:measure}': ['max>=0'],
    'http_req_failed{phase:measure}': ['rate>=0'],
    'checks{phase:measure}': ['rate>=0'],
  },
};

const params = { headers: spec.headers || {}, responseCallback: http.expectedStatuses(spec.expect) };
const plainBody = spec.body === undefined || spec.body === null ? null : JSON.stringify(spec.body);
const DAY_MS = 86400000;

function slotBody() {
  // Warm-up and measure count their iterations apart: keep their slots apart too.
  const offset = exec.scenario.name === 'warmup' ? 0 : spec.slots.measure_offset;
  const i = offset + exec.scenario.iterationInTest;
  const perDay = spec.slots.starts.length * spec.slots.workers.length;
  const day = Math.floor(i / perDay);
  const within = i % perDay;
  const worker = spec.slots.workers[within % spec.slots.workers.length];
  const hour = spec.slots.starts[Math.floor(within / spec.slots.workers.length)];
  const startsAt = new Date(spec.slots.first_day_ms + day * DAY_MS + hour * 3600000).toISOString();
  const headers = Object.assign({}, params.headers, { 'Idempotency-Key': `${spec.slots.key}-${i}` });
  return [JSON.stringify(Object.assign({}, spec.body, { starts_at: startsAt, worker_ids: [worker] })), headers];
}

function stripeEvent() {
  // A distinct event per iteration, signed as Stripe signs it (HMAC-SHA256 of `${t}.${body}`).
  const n = `${exec.scenario.name}_${exec.scenario.iterationInTest}`;
  const body = JSON.stringify(Object.assign({}, spec.stripe.event, { id: `evt_${spec.stripe.prefix}_${n}` }));
  const t = Math.floor(Date.now() / 1000);
  const signature = crypto.hmac('sha256', spec.stripe.secret, `${t}.${body}`, 'hex');
  const headers = Object.assign({}, params.headers, {
    'Content-Type': 'application/json', 'Stripe-Signature': `t=${t},v1=${signature}`,
  });
  return [body, headers];
}

export default function () {
  let res;
  if (spec.stripe) {
    const [body, headers] = stripeEvent();
    res = http.request('POST', spec.url, body, Object.assign({}, params, { headers }));
  } else if (spec.slots) {
    const [body, headers] = slotBody();
    res = http.request(spec.method, spec.url, body, Object.assign({}, params, { headers }));
  } else {
    res = http.request(spec.method, spec.url, plainBody, params);
  }
  check(res, { status: (r) => r.status === spec.expect });
}

export function handleSummary(data) {
  const out = {};
  out[spec.out] = JSON.stringify(data);
  return out;
}
