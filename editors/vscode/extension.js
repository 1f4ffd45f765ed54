// Starts `weft lsp` for the YAML files that are weft's and lets VS Code talk to it.
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');
const { isWeftFile } = require('./weft-files');

/** @type {LanguageClient | undefined} */
let client;

function isWeftDocument(doc) {
  return doc.languageId === 'yaml' && isWeftFile(doc.fileName, doc.getText());
}

function createClient() {
  const command = vscode.workspace.getConfiguration('weft').get('path') || 'weft';
  const run = { command, args: ['lsp'], transport: TransportKind.stdio };
  return new LanguageClient(
    'weft',
    'weft',
    { run, debug: run },
    {
      documentSelector: [
        { scheme: 'file', language: 'yaml' },
        { scheme: 'untitled', language: 'yaml' },
      ],
      // Other YAML (compose files, CI) is not weft's: the server is never told about it,
      // and answers nothing for documents it was not told about.
      middleware: {
        didOpen: (doc, next) => (isWeftDocument(doc) ? next(doc) : Promise.resolve()),
        didChange: (event, next) =>
          isWeftDocument(event.document) ? next(event) : Promise.resolve(),
        didClose: (doc, next) => (isWeftDocument(doc) ? next(doc) : Promise.resolve()),
      },
    },
  );
}

async function start() {
  client = createClient();
  try {
    await client.start();
  } catch (err) {
    const path = vscode.workspace.getConfiguration('weft').get('path');
    vscode.window.showErrorMessage(
      `weft: cannot start \`${path} lsp\` (${err.message || err}). Install weft or set "weft.path".`,
    );
  }
}

async function restart() {
  if (client) {
    await client.stop().catch(() => undefined);
  }
  await start();
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('weft.restartServer', restart),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('weft.path')) {
        restart();
      }
    }),
  );
  await start();
}

async function deactivate() {
  if (client) {
    await client.stop();
  }
}

module.exports = { activate, deactivate };
