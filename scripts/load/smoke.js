// The operations guides' load smoke, and the deploy smoke: `just load [BASE_URL]`.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8000 scripts/load/smoke.js
//
// setup() signs up a throwaway organisation through the API (and gives it a service), unless
// LOAD_EMAIL and LOAD_PASSWORD (and LOAD_ORG_SLUG when the account is in several organisations)
// name an existing account, as a production smoke should. Each operation then runs at a fixed
// arrival rate chosen to stay inside the default rate-limit quotas of one caller (120/min default,
// 5/min availability, 10/min sign-in per address), so a 429 is a failure, never the plan.
// Thresholds: error rate < 5 %, p95 < 300 ms (over all requests, and per operation); k6 exits
// non-zero when one fails. LOAD_DURATION (default 30s) and LOAD_RATE (health checks per second
// each, default 10) tune it.
import http from 'k6/http';
import { check, fail } from 'k6';

const BASE = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const DURATION = __ENV.LOAD_DURATION || '30s';
const HEALTH_RATE = parseInt(__ENV.LOAD_RATE || '10', 10);
// The thresholds; the defaults are the operations guides' (LOAD_P95_MS only to prove a failing run fails).
const P95 = `p(95)<${parseInt(__ENV.LOAD_P95_MS || '300', 10)}`;
const JSON_HEADERS = { 'Content-Type': 'application/json' };

function every(exec, rate, timeUnit, vus) {
  return {
    executor: 'constant-arrival-rate', exec, rate, timeUnit, duration: DURATION,
    preAllocatedVUs: vus, maxVUs: vus * 4, tags: { op: exec },
  };
}

export const options = {
  scenarios: {
    healthz: every('healthz', HEALTH_RATE, '1s', 2),
    readyz: every('readyz', HEALTH_RATE, '1s', 2),
    list_bookings: every('listBookings', 1, '1s', 2),
    quote: every('quote', 1, '2s', 2),
    availability: every('availability', 1, '15s', 1),
    login: every('login', 1, '15s', 1),
  },
  thresholds: {
    http_req_failed: ['rate<0.05'],
    http_req_duration: [P95],
    'http_req_duration{op:healthz}': [P95],
    'http_req_duration{op:readyz}': [P95],
    'http_req_duration{op:listBookings}': [P95],
    'http_req_duration{op:quote}': [P95],
    'http_req_duration{op:availability}': [P95],
    'http_req_duration{op:login}': [P95],
    checks: ['rate>0.95'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

function body(res, what) {
  if (res.status < 200 || res.status >= 300) {
    fail(`${what}: ${res.status} ${String(res.body).slice(0, 300)}`);
  }
  return res.json();
}

function isoDay(offsetDays) {
  return new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);
}

export function setup() {
  body(http.get(`${BASE}/readyz`), 'readyz before the smoke');
  let email = __ENV.LOAD_EMAIL;
  let password = __ENV.LOAD_PASSWORD;
  let slug = __ENV.LOAD_ORG_SLUG || null;
  let session;
  if (email && password) {
    const login = { email, password };
    if (slug) login.org_slug = slug;
    session = body(http.post(`${BASE}/v1/auth/login`, JSON.stringify(login), { headers: JSON_HEADERS }), 'login');
  } else {
    const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    email = `load-smoke-${tag}@example.com`;
    password = `smoke-${tag}-Passw0rd!`;
    session = body(
      http.post(
        `${BASE}/v1/auth/signup`,
        JSON.stringify({
          org_name: `Load smoke ${tag}`, email, password, full_name: 'Load Smoke',
          timezone: 'America/Toronto', currency: 'CAD', locale: 'en-CA',
        }),
        { headers: JSON_HEADERS },
      ),
      'signup',
    );
    slug = session.organization.slug;
  }
  const auth = { Authorization: `Bearer ${session.access_token}`, 'Content-Type': 'application/json' };
  let services = body(http.get(`${BASE}/v1/services`, { headers: auth }), 'services').items;
  if (!services.length) {
    const created = http.post(
      `${BASE}/v1/services`,
      JSON.stringify({ name: 'Standard clean (load smoke)', base_price_cents: 10000, base_minutes: 120 }),
      { headers: auth },
    );
    services = [body(created, 'create a service')];
  }
  return { auth, email, password, slug, serviceId: services[0].id };
}

function expectOk(res, what) {
  check(res, { [`${what} 2xx`]: (r) => r.status >= 200 && r.status < 300 });
}

export function healthz() {
  expectOk(http.get(`${BASE}/healthz`), 'healthz');
}

export function readyz() {
  expectOk(http.get(`${BASE}/readyz`), 'readyz');
}

export function listBookings(data) {
  const day = isoDay(1);
  expectOk(http.get(`${BASE}/v1/bookings?date_from=${day}&date_to=${day}&limit=50`, { headers: data.auth }), 'list bookings');
}

export function quote(data) {
  const payload = JSON.stringify({ service_id: data.serviceId, bedrooms: 2, bathrooms: 1 });
  expectOk(http.post(`${BASE}/v1/quotes`, payload, { headers: data.auth }), 'quote');
}

export function availability(data) {
  const day = isoDay(7);
  const url = `${BASE}/v1/availability?service_id=${data.serviceId}&date_from=${day}&date_to=${day}`;
  expectOk(http.get(url, { headers: data.auth }), 'availability');
}

export function login(data) {
  const payload = { email: data.email, password: data.password };
  if (data.slug) payload.org_slug = data.slug;
  expectOk(http.post(`${BASE}/v1/auth/login`, JSON.stringify(payload), { headers: JSON_HEADERS }), 'login');
}
