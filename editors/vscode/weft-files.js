// Which YAML documents are weft's. Kept apart from extension.js (no `vscode` import) so
// `npm test` can check it with plain node.
'use strict';

const path = require('path');

/**
 * Is this YAML text, saved as `fileName`, a weft file: a workflow (a top-level `tasks:` key
 * or weft's schema header), a form (a top-level `form:` key), a crate manifest
 * (`crate.yaml`) or a workflow test (`*.test.yaml`)?
 * @param {string} fileName
 * @param {string} text
 */
function isWeftFile(fileName, text) {
  const base = path.basename(fileName || '');
  if (base === 'crate.yaml' || base.endsWith('.test.yaml')) {
    return true;
  }
  return /^(tasks|form):/m.test(text) || /^#.*weft-(workflow|form)\.schema/m.test(text);
}

module.exports = { isWeftFile };
