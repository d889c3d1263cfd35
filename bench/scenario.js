// The scenario benchmark (the challenge's scoring), written from the published rules: virtual users ramp
// from 1 to MAX_REQUESTS over the run, each posting a payment of AMOUNT then sleeping 1 s; a
// schedule changes the processors' delay and failure mode through their admin API; every
// 10 s our summary is compared with both processors' books over [now-15 s, now-1.5 s]; at the
// end both books are printed (FINAL) with p99 and the counts (SCENARIO), from which
// scripts/bench-scenario computes the score as the official test does.
//
//   k6 run bench/scenario.js                      (backend on :9999, processors on 8001/8002)
//   BACKEND=http://127.0.0.1:9999 DEFAULT=http://127.0.0.1:8001 FALLBACK=http://127.0.0.1:8002 \
//   MAX_REQUESTS=550 AMOUNT=19.90 SCHEDULE=published k6 run bench/scenario.js
//
// SCHEDULE: published (the published table), slow-default (default at 3 s per payment for
// most of the run), long-outage (default failing from 10 s to 55 s), flapping (default and
// fallback failing in turn every 10 s), tail-outage (default failing from 40 s to the end),
// both-slow (both at 300-1200 ms all run, never failing), fast-flapping (default and
// fallback failing in turn every 3 s), or long-run (300 s, 600 VUs: default slow at 2 s per
// payment for 90 s, then failing for 2 min; meant for fees of 7%/10%, which are the
// processors' and the instances' business: scripts/bench-scenario sets them). Every schedule
// runs 60 s with 550 VUs unless SCHEDULE_OPTIONS says otherwise; DURATION_S and MAX_REQUESTS
// override both. Loopback only.
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { uuidv4 } from './uuid.js';

const BACKEND = __ENV.BACKEND || 'http://127.0.0.1:9999';
const PROCESSORS = { default: __ENV.DEFAULT || 'http://127.0.0.1:8001', fallback: __ENV.FALLBACK || 'http://127.0.0.1:8002' };
const AMOUNT = parseFloat(__ENV.AMOUNT || '19.90');
const TOKEN = __ENV.TOKEN || '123';
const SCHEDULE = __ENV.SCHEDULE || 'published';
// Schedules whose run is not the published one's 60 s with 550 virtual users.
const SCHEDULE_OPTIONS = {
  'long-run': { durationS: 300, vus: 600 },
};
const OPTS = SCHEDULE_OPTIONS[SCHEDULE] || {};
const DURATION_S = parseInt(__ENV.DURATION_S || OPTS.durationS || '60', 10);
const MAX_REQUESTS = parseInt(__ENV.MAX_REQUESTS || OPTS.vus || '550', 10);

const SCHEDULES = {
  // [from second, default {delay, failure}, fallback {delay, failure}]
  published: [
    [1, [0, false], [0, false]],
    [10, [100, false], [0, false]],
    [20, [100, true], [0, false]],
    [30, [2000, true], [1000, true]],
    [40, [20, false], [20, false]],
    [50, [0, false], [5000, false]],
  ],
  'slow-default': [
    [1, [0, false], [0, false]],
    [8, [3000, false], [0, false]],
    [50, [0, false], [0, false]],
  ],
  'long-outage': [
    [1, [0, false], [0, false]],
    [10, [0, true], [0, false]],
    [55, [0, false], [0, false]],
  ],
  flapping: [
    [1, [0, false], [0, false]],
    [10, [0, true], [0, false]],
    [20, [0, false], [0, true]],
    [30, [0, true], [0, false]],
    [40, [0, false], [0, true]],
    [50, [0, false], [0, false]],
  ],
  // Default fails from 2/3 of the run to the end and never comes back.
  'tail-outage': [
    [1, [0, false], [0, false]],
    [40, [0, true], [0, false]],
  ],
  // Both slow for the whole run (300-1200 ms, changing every 5 s), never failing.
  'both-slow': [
    [1, [800, false], [300, false]],
    [5, [1200, false], [600, false]],
    [10, [300, false], [1000, false]],
    [15, [1000, false], [400, false]],
    [20, [600, false], [1200, false]],
    [25, [1200, false], [300, false]],
    [30, [400, false], [800, false]],
    [35, [900, false], [1100, false]],
    [40, [1200, false], [500, false]],
    [45, [700, false], [900, false]],
    [50, [1100, false], [300, false]],
    [55, [500, false], [1200, false]],
  ],
  // Default and fallback failing in turn every 3 s.
  'fast-flapping': Array.from({ length: 20 }, (_, k) => [
    1 + 3 * k,
    [0, k % 2 === 1],
    [0, k % 2 === 0 && k > 0],
  ]),
  // 300 s (SCHEDULE_OPTIONS): default slow (2 s per payment, never failing) for 90 s, back for
  // 30 s, then failing for 2 min, back for the last 30 s; fallback works throughout.
  'long-run': [
    [1, [0, false], [0, false]],
    [30, [2000, false], [0, false]],
    [120, [0, false], [0, false]],
    [150, [0, true], [0, false]],
    [270, [0, false], [0, false]],
  ],
};

const requested = new Counter('payments_requested');
const accepted = new Counter('payments_accepted');
const inconsistencies = new Counter('inconsistencies');
const backendLatency = new Trend('backend_latency', true);

export const options = {
  summaryTrendStats: ['p(50)', 'p(99)', 'max', 'count'],
  scenarios: {
    payments: {
      executor: 'ramping-vus',
      startVUs: 1,
      stages: [{ duration: `${DURATION_S}s`, target: MAX_REQUESTS }],
      gracefulRampDown: '0s',
      exec: 'payment',
    },
    processors: { executor: 'shared-iterations', vus: 1, iterations: 1, exec: 'schedule', maxDuration: `${DURATION_S + 5}s`, gracefulStop: '0s' },
    audits: { executor: 'constant-arrival-rate', rate: 1, timeUnit: '10s', duration: `${DURATION_S}s`, preAllocatedVUs: 1, startTime: '10s', exec: 'audit' },
    final: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: `${DURATION_S + 2}s`, exec: 'finish' },
  },
};

const adminHeaders = { 'X-Rinha-Token': TOKEN, 'Content-Type': 'application/json' };

function configure(name, [delay, failure]) {
  http.put(`${PROCESSORS[name]}/admin/configurations/delay`, JSON.stringify({ delay }), { headers: adminHeaders, tags: { kind: 'admin' } });
  http.put(`${PROCESSORS[name]}/admin/configurations/failure`, JSON.stringify({ failure }), { headers: adminHeaders, tags: { kind: 'admin' } });
}

export function setup() {
  for (const name of ['default', 'fallback']) {
    http.post(`${PROCESSORS[name]}/admin/purge-payments`, null, { headers: adminHeaders });
    configure(name, [0, false]);
  }
  http.post(`${BACKEND}/purge-payments`);
  return { start: Date.now() };
}

export function payment() {
  const body = JSON.stringify({ correlationId: uuidv4(), amount: AMOUNT });
  const res = http.post(`${BACKEND}/payments`, body, { headers: { 'Content-Type': 'application/json' }, tags: { kind: 'backend' } });
  requested.add(1);
  backendLatency.add(res.timings.duration);
  if (res.status >= 200 && res.status < 300) accepted.add(1);
  sleep(1);
}

export function schedule(data) {
  for (const [at, def, fb] of SCHEDULES[SCHEDULE]) {
    const wait = data.start + at * 1000 - Date.now();
    if (wait > 0) sleep(wait / 1000);
    configure('default', def);
    configure('fallback', fb);
  }
}

function books(from, to) {
  const q = `?from=${from}&to=${to}`;
  const res = http.get(`${BACKEND}/payments-summary${q}`, { tags: { kind: 'backend' } });
  // Every request to us counts towards p99 (as the challenge scores it), the audits' reads too.
  backendLatency.add(res.timings.duration);
  const ours = res.json();
  const theirs = {};
  for (const name of ['default', 'fallback']) {
    theirs[name] = http.get(`${PROCESSORS[name]}/admin/payments-summary${q}`, { headers: adminHeaders, tags: { kind: 'admin' } }).json();
  }
  return { ours, theirs };
}

export function audit() {
  const now = Date.now();
  const from = new Date(now - 15000).toISOString();
  const to = new Date(now - 1500).toISOString();
  const { ours, theirs } = books(from, to);
  for (const name of ['default', 'fallback']) {
    if (ours[name].totalRequests !== theirs[name].totalRequests) {
      inconsistencies.add(1);
      console.warn(`inconsistency on ${name}: ours ${ours[name].totalRequests}, theirs ${theirs[name].totalRequests} in [${from}, ${to}]`);
    }
  }
}

export function finish() {
  const now = Date.now();
  // The published run's final read covers its last 70 s: the whole run plus 10 s.
  const from = new Date(now - (DURATION_S + 10) * 1000).toISOString();
  const to = new Date(now).toISOString();
  const { ours, theirs } = books(from, to);
  // scripts/bench-scenario reads this line and computes the score from it.
  console.log(`FINAL ${JSON.stringify({ ours, theirs })}`);
}

export function handleSummary(data) {
  const m = data.metrics;
  const count = (name) => (m[name] ? m[name].values.count : 0);
  const p99 = m.backend_latency ? m.backend_latency.values['p(99)'] : 0;
  const result = {
    schedule: SCHEDULE,
    duration_s: DURATION_S,
    max_vus: MAX_REQUESTS,
    requested: count('payments_requested'),
    accepted: count('payments_accepted'),
    inconsistencies: count('inconsistencies'),
    p99_ms: Math.round(p99 * 1000) / 1000,
  };
  return { stdout: `SCENARIO ${JSON.stringify(result)}\n` };
}
