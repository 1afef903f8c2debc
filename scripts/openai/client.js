// Drives Tailor's OpenAI-compatible server with the official openai client.
// Usage: node client.js <openai install prefix> <base URL>
// Prints one JSON object with what each call returned; the Go test checks it.
'use strict';
const path = require('path');

async function main() {
  const [prefix, baseURL] = process.argv.slice(2);
  const mod = require(require.resolve('openai', { paths: [path.join(prefix, 'node_modules')] }));
  const OpenAI = mod.OpenAI || mod.default || mod;
  const version = require(path.join(prefix, 'node_modules', 'openai', 'package.json')).version;
  const client = new OpenAI({ apiKey: 'unused', baseURL, maxRetries: 0 });
  const out = { version };

  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);

  const req = { model: 'chat', messages: [{ role: 'user', content: 'hello, how are you?' }], max_tokens: 10, temperature: 0 };
  const chat = await client.chat.completions.create(req);
  out.chat = { content: chat.choices[0].message.content, finish: chat.choices[0].finish_reason, usage: chat.usage, object: chat.object };

  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta.content || '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  out.stream = { content: text, finish, usage, chunks };

  const cmpl = await client.completions.create({ model: 'tiny', prompt: 'the quick brown', max_tokens: 8, temperature: 0 });
  out.completion = { text: cmpl.choices[0].text, finish: cmpl.choices[0].finish_reason, usage: cmpl.usage };

  try {
    await client.chat.completions.create({ ...req, model: 'no-such-model' });
    out.unknown = { error: null };
  } catch (e) {
    out.unknown = { status: e.status, code: e.code, type: e.type, param: e.param, message: e.message };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
