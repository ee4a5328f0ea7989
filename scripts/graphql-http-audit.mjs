// Runs the graphql-http audit suite (https://github.com/graphql/graphql-http) against a
// running funnelgraph. Usage: node graphql-http-audit.mjs URL TOKEN
// Every request carries the bearer token (the API has no anonymous access); everything else
// is the suite's own request. Exits 1 on any error or warning.
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status] += 1;
  if (r.status !== 'ok') {
    let detail = '';
    if (r.response) {
      detail = ` -> ${r.response.status} ${r.response.headers.get('content-type')}: ${(await r.response.text()).slice(0, 200)}`;
    }
    console.log(`${r.status.toUpperCase().padEnd(6)} ${r.id} ${r.name}: ${r.reason}${detail}`);
  }
}
console.log(`graphql-http audit: ${results.length} audits, ${counts.ok} ok, ${counts.notice} notices, ${counts.warn} warnings, ${counts.error} errors`);
process.exit(counts.warn + counts.error > 0 ? 1 : 0);
