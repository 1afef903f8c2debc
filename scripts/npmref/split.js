#!/usr/bin/env node
// split.js splits texts with the pre-tokenizer regexes of GPT-2, Llama 3
// and Qwen2, using JavaScript's backtracking regex engine (which has the
// lookahead Go's regexp lacks), as an independent check of the Go scanners.
//
//   node scripts/npmref/split.js gpt2|llama3|qwen2 IN.json OUT.json
//
// JavaScript has no inline (?i:…) group in node 20, so the case-insensitive
// contractions are spelled out with character classes.
'use strict';
const fs = require('fs');

const contractionsI = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
const PATTERNS = {
  gpt2: /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu,
  llama3: new RegExp(`${contractionsI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`, 'gu'),
  qwen2: new RegExp(`${contractionsI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`, 'gu'),
};

const [which, inPath, outPath] = process.argv.slice(2);
const re = PATTERNS[which];
if (!re) {
  console.error('usage: split.js gpt2|llama3|qwen2 IN.json OUT.json');
  process.exit(2);
}
const texts = JSON.parse(fs.readFileSync(inPath, 'utf8'));
fs.writeFileSync(outPath, JSON.stringify(texts.map((s) => Array.from(s.matchAll(re), (m) => m[0]))));
