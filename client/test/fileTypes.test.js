import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extensionOf, fileType, carriesFiles, transferredFiles } from '../renderer/js/fileTypes.js';

test('the extension is the last one, lower-case', () => {
  assert.equal(extensionOf('Report.Final.PDF'), 'pdf');
  assert.equal(extensionOf('archive.tar.gz'), 'gz');
  assert.equal(extensionOf('.bashrc'), '');
  assert.equal(extensionOf('README'), '');
  assert.equal(extensionOf('dir.v2/notes'), '');
});

test('a known extension names its family and label', () => {
  assert.deepEqual(fileType('q3.xlsx'), { label: 'XLSX', family: 'sheet' });
  assert.deepEqual(fileType('paper.pdf'), { label: 'PDF', family: 'pdf' });
});

test('an unknown or odd extension still gets a short label', () => {
  assert.deepEqual(fileType('data.bin'), { label: 'BIN', family: 'other' });
  assert.deepEqual(fileType('notes'), { label: 'FILE', family: 'other' });
  assert.deepEqual(fileType('x.verylongext'), { label: 'FILE', family: 'other' });
});

test('a drag carries files only when its types say so', () => {
  assert.equal(carriesFiles({ types: ['text/plain'] }), false);
  assert.equal(carriesFiles({ types: ['Files', 'text/uri-list'] }), true);
  assert.equal(carriesFiles(null), false);
});

test('a paste with files listed twice gives each file once; a screenshot comes from its item', () => {
  const a = { name: 'a.png' };
  assert.deepEqual(transferredFiles({ files: [a], items: [{ kind: 'file', getAsFile: () => a }] }), [a]);
  const shot = { name: 'image.png' };
  assert.deepEqual(transferredFiles({ files: [], items: [{ kind: 'string' }, { kind: 'file', getAsFile: () => shot }] }), [shot]);
  assert.deepEqual(transferredFiles(null), []);
});
