// Runs llama.cpp (node-llama-cpp's prebuilt CPU build; never downloads or
// builds anything) on GGUF files and prints what it did as one JSON object.
// Usage: node check.js <install prefix> <job.json>
//
// job.json: {"threads": N, "models": [{"path": "x.gguf",
//   "tokenize": ["text", ...],             // llama_tokenize, parse_special
//   "chat": [{"messages": [...], "add_generation_prompt": true}],
//                                          // the GGUF's chat template, rendered by @huggingface/jinja
//   "greedy": [{"tokens": [ids], "n": 32}], // temperature 0, token ids in and out, and the text
//   "bench": {"tokens": [ids], "n": 128, "rounds": 3} // decode tokens/s, single stream, best round (with the tokens it generated)
// }]}
'use strict';
const path = require('path');
const fs = require('fs');
const { pathToFileURL } = require('url');

process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';

async function main() {
  const [prefix, jobPath] = process.argv.slice(2);
  const job = JSON.parse(fs.readFileSync(jobPath, 'utf8'));
  const mods = path.join(prefix, 'node_modules');
  const nlc = await import(pathToFileURL(path.join(mods, 'node-llama-cpp', 'dist', 'index.js')).href);
  const { Template } = await import(pathToFileURL(path.join(mods, '@huggingface', 'jinja', 'dist', 'index.js')).href);
  const version = JSON.parse(fs.readFileSync(path.join(mods, 'node-llama-cpp', 'package.json'), 'utf8')).version;
  const llama = await nlc.getLlama({
    gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true,
    progressLogs: false, logLevel: 'error', maxThreads: job.threads,
  });
  const out = { version, llamaCpp: llama.llamaCppRelease, threads: job.threads, models: [] };
  for (const m of job.models) {
    const model = await llama.loadModel({ modelPath: m.path, gpuLayers: 0 });
    const meta = model.fileInfo.metadata;
    const r = { pre: meta.tokenizer.ggml.pre, tokens: [], chat: [], greedy: [], greedyText: [] };
    for (const text of m.tokenize || []) r.tokens.push(Array.from(model.tokenize(text, true)));
    for (const c of m.chat || []) {
      const tpl = new Template(meta.tokenizer.chat_template);
      const bos = meta.tokenizer.ggml.bos_token_id, eos = meta.tokenizer.ggml.eos_token_id;
      r.chat.push(tpl.render({
        messages: c.messages, add_generation_prompt: c.add_generation_prompt,
        bos_token: model.detokenize([bos], true), eos_token: model.detokenize([eos], true),
      }));
    }
    if ((m.greedy && m.greedy.length) || m.bench) {
      // An f32 KV cache, so the cache adds no rounding Tailor's does not.
      const context = await model.createContext({
        contextSize: m.contextSize || 512, batchSize: m.contextSize || 512, sequences: 1,
        threads: { ideal: job.threads, min: job.threads },
        experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false,
      });
      for (const g of m.greedy || []) {
        const seq = context.getSequence();
        const got = [];
        for await (const tok of seq.evaluate(g.tokens, { temperature: 0 })) {
          got.push(tok);
          if (got.length >= g.n) break;
        }
        r.greedy.push(got);
        r.greedyText.push(model.detokenize(got, false));
        seq.dispose();
      }
      if (m.bench) {
        // Best of `rounds` (default 3) fresh sequences: prefill, first
        // token, then `n` timed decode steps.
        let best = null;
        for (let round = 0; round < (m.bench.rounds || 3); round++) {
          const seq = context.getSequence();
          let first = 0n, n = 0;
          const toks = [];
          const t0 = process.hrtime.bigint();
          for await (const tok of seq.evaluate(m.bench.tokens, { temperature: 0 })) {
            toks.push(tok);
            n++;
            if (n === 1) first = process.hrtime.bigint();
            if (n >= m.bench.n + 1) break;
          }
          const end = process.hrtime.bigint();
          const b = { prefillAndFirstMs: Number(first - t0) / 1e6, decoded: n - 1, decodeMs: Number(end - first) / 1e6, tokens: toks };
          if (best === null || b.decodeMs / b.decoded < best.decodeMs / best.decoded) best = b;
          seq.dispose();
        }
        r.bench = best;
      }
      await context.dispose();
    }
    out.models.push(r);
    await model.dispose();
  }
  process.stdout.write(JSON.stringify(out));
  await llama.dispose();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
