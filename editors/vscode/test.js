// `npm test`: the file detection, without VS Code.
'use strict';

const assert = require('assert');
const { isWeftFile } = require('./weft-files');

assert.ok(isWeftFile('/w/flow.yaml', 'name: x\ntasks:\n  a:\n    action: core.noop\n'));
assert.ok(isWeftFile('/w/new.yaml', '# yaml-language-server: $schema=../weft-workflow.schema.json\n'));
assert.ok(isWeftFile('/w/form.yaml', 'form: offboarding\nfields: []\n'));
assert.ok(isWeftFile('/c/crate.yaml', 'name: c\n'));
assert.ok(isWeftFile('/w/flow.test.yaml', 'cases: []\n'));
assert.ok(!isWeftFile('/w/compose.yaml', 'services:\n  db: {}\n'));
assert.ok(!isWeftFile('/w/x.yaml', 'a:\n  tasks: 1\n'));
console.log('weft-files: ok');
