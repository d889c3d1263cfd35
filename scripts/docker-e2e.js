// The load of scripts/docker-e2e: payments at a constant rate for a bounded time through
// :9999, and, alongside, audits as the official test makes them (our summary against both
// processors' admin summaries over a window ending AUDIT_LAG_MS ago). Loopback only.
//
//   RATE=200 DURATION_S=6 OUT=/tmp/load.json k6 run --quiet scripts/docker-e2e.js
//
// OUT receives {"accepted":N,"refused":N,"audits":N,"inconsistencies":N,...}: accepted are the
// payments answered 202, the only ones that must end up stored; an inconsistency is an audit
// whose books differ. The first few refusals and inconsistencies of each VU are logged.
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import { uuidv4 } from '../bench/uuid.js';

const BACKEND = __ENV.BACKEND || 'http://127.0.0.1:9999';
const PROCESSORS = [__ENV.DEFAULT || 'http://127.0.0.1:8001', __ENV.FALLBACK || 'http://127.0.0.1:8002'];
const RATE = parseInt(__ENV.RATE || '200', 10);
const DURATION_S = parseInt(__ENV.DURATION_S || '6', 10);
const AUDIT_LAG_MS = parseInt(__ENV.AUDIT_LAG_MS || '1500', 10);
const AMOUNT = parseFloat(__ENV.AMOUNT || '19.90');

const accepted = new Counter('payments_accepted');
const refused = new Counter('payments_refused');
const audits = new Counter('audits');
const inconsistencies = new Counter('inconsistencies');

export const options = {
  // Bounded in count and time: RATE x DURATION_S payments at most, each request 5 s at most.
  scenarios: {
    payments: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${DURATION_S}s`,
      preAllocatedVUs: 50,
      maxVUs: 200,
      exec: 'payment',
      gracefulStop: '5s',
    },
    audits: {
      executor: 'constant-arrival-rate',
      rate: 2,
      timeUnit: '1s',
      duration: `${DURATION_S}s`,
      preAllocatedVUs: 2,
      maxVUs: 4,
      exec: 'audit',
      gracefulStop: '5s',
    },
  },
  summaryTrendStats: ['p(50)', 'p(99)', 'max'],
};

let logged = 0;
function note(text) {
  if (logged < 3) {
    logged += 1;
    console.log(text);
  }
}

export function payment() {
  const res = http.post(
    `${BACKEND}/payments`,
    JSON.stringify({ correlationId: uuidv4(), amount: AMOUNT }),
    { headers: { 'Content-Type': 'application/json' }, timeout: '5s', tags: { name: 'payment' } },
  );
  if (res.status === 202) {
    accepted.add(1);
  } else {
    refused.add(1);
    note(`payment answered ${res.status} ${res.error || ''} ${String(res.body || '').slice(0, 120)}`);
  }
}

// {"totalRequests":N,"totalAmount":X} -> [N, cents]
function totals(obj) {
  return [obj.totalRequests, Math.round(obj.totalAmount * 100)];
}

export function audit() {
  const to = new Date(Date.now() - AUDIT_LAG_MS).toISOString();
  const from = new Date(Date.now() - AUDIT_LAG_MS - 10000).toISOString();
  const q = `from=${from}&to=${to}`;
  const ours = http.get(`${BACKEND}/payments-summary?${q}`, { timeout: '5s', tags: { name: 'summary' } });
  const theirs = PROCESSORS.map((p) =>
    http.get(`${p}/admin/payments-summary?${q}`, { headers: { 'X-Rinha-Token': '123' }, timeout: '5s', tags: { name: 'admin' } }),
  );
  if (ours.status !== 200 || theirs.some((r) => r.status !== 200)) {
    note(`audit not possible: ${ours.status} ${theirs.map((r) => r.status)}`);
    return;
  }
  audits.add(1);
  const o = ours.json();
  const sides = [totals(o.default), totals(o.fallback)];
  const books = theirs.map((r) => totals(r.json()));
  const same = sides.every((s, i) => s[0] === books[i][0] && s[1] === books[i][1]);
  if (!same) {
    inconsistencies.add(1);
    note(`inconsistent audit ${q}: ours [count, cents] ${JSON.stringify(sides)}, processors ${JSON.stringify(books)}`);
  }
}

export function handleSummary(data) {
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  const out = {
    accepted: count('payments_accepted'),
    refused: count('payments_refused'),
    audits: count('audits'),
    inconsistencies: count('inconsistencies'),
    httpFailed: data.metrics.http_req_failed ? data.metrics.http_req_failed.values.passes : 0,
    p99Ms: data.metrics.http_req_duration ? data.metrics.http_req_duration.values['p(99)'] : null,
  };
  return { [__ENV.OUT || '/dev/stdout']: JSON.stringify(out) + '\n' };
}
