#!/usr/bin/env node
// A solc command line for py-solc-x built on the npm `solc` package (WebAssembly): the npm CLI
// prints a banner before its JSON, so solcx cannot drive it directly. Answers `--version` and
// `--standard-json` (input on stdin); imports resolve against the repository and node_modules.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const nodeModules = process.env.FEDMARKET_NODE_MODULES || path.join(root, 'node_modules');
const solc = require(path.join(nodeModules, 'solc'));

function findImports(importPath) {
  for (const base of [root, nodeModules]) {
    const candidate = path.resolve(base, importPath);
    if (candidate.startsWith(base) && fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: `import not found: ${importPath}` };
}

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes('--standard-json')) {
  const input = fs.readFileSync(0, 'utf8');
  process.stdout.write(solc.compile(input, { import: findImports }));
} else {
  process.stderr.write('usage: solc-driver.js --version | --standard-json < input.json\n');
  process.exit(2);
}
