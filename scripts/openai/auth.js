// Drives Tailor's OpenAI-compatible routes with the official openai client
// and an API key: lists the models and reports what happened.
// Usage: node auth.js <openai install prefix> <base URL> <api key>
// Prints {"ok": true, "models": [...]} or {"ok": false, "status", "message"}.
'use strict';
const path = require('path');

async function main() {
  const [prefix, baseURL, apiKey] = process.argv.slice(2);
  const mod = require(require.resolve('openai', { paths: [path.join(prefix, 'node_modules')] }));
  const OpenAI = mod.OpenAI || mod.default || mod;
  const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
  try {
    const models = await client.models.list();
    process.stdout.write(JSON.stringify({ ok: true, models: models.data.map((m) => m.id) }));
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, status: e.status, message: e.message }));
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
