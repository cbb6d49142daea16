import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uploadLimits, refusalOf, createUploadQueue, isAbort } from '../renderer/js/uploads.js';
import { createApi, REFRESH_KEY } from '../renderer/js/api.js';
import { memoryStorage, jwt, jsonResponse, fakeFetch } from './fakes.js';

const CONFIG = { upload_max_bytes: 10 * 1024 * 1024, file_max_bytes: 50 * 1024 * 1024, image_types: ['image/png', 'image/jpeg'] };
const file = (name, size, type = '') => ({ name, size, type });

/** An upload function whose requests the test settles by hand, like a server that answers later. */
function manualUpload() {
  const requests = [];
  const upload = (f, { onProgress, signal }) => new Promise((resolve, reject) => {
    const request = { file: f, onProgress, signal, resolve, reject, aborted: false };
    signal.addEventListener('abort', () => {
      request.aborted = true;
      reject(Object.assign(new Error('cancelled'), { name: 'AbortError' }));
    });
    requests.push(request);
  });
  return { upload, requests };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('the limits are read from GET /api/config', () => {
  assert.deepEqual(uploadLimits(CONFIG), { imageTypes: ['image/png', 'image/jpeg'], imageMaxBytes: 10485760, fileMaxBytes: 52428800 });
});

test('without a config nothing is refused here: the server decides', () => {
  const limits = uploadLimits(null);
  assert.equal(refusalOf(file('huge.iso', 5e9), limits), null);
});

test('an image over the image limit is refused with both sizes named', () => {
  const reason = refusalOf(file('big.png', 11 * 1024 * 1024, 'image/png'), uploadLimits(CONFIG));
  assert.equal(reason, 'big.png is 11.0 MB; an image can be at most 10.0 MB.');
});

test('a file of another type may be as large as the file limit', () => {
  const limits = uploadLimits(CONFIG);
  assert.equal(refusalOf(file('video.mkv', 40 * 1024 * 1024, 'video/x-matroska'), limits), null);
  assert.match(refusalOf(file('video.mkv', 51 * 1024 * 1024), limits), /a file can be at most 50\.0 MB/);
});

test('an empty file is refused', () => {
  assert.equal(refusalOf(file('empty.txt', 0), uploadLimits(CONFIG)), 'empty.txt is empty.');
});

test('each file uploads on its own and reports its progress', async () => {
  const { upload, requests } = manualUpload();
  const progress = [];
  const queue = createUploadQueue({ upload, limits: () => uploadLimits(CONFIG), onChange: (item) => item && progress.push(item.progress) });
  queue.add([file('a.pdf', 10), file('b.zip', 20)]);
  assert.equal(requests.length, 2);
  assert.equal(queue.busy(), true);
  requests[0].onProgress(0.5);
  requests[0].resolve({ id: 1, kind: 'file', name: 'a.pdf' });
  await settle();
  assert.deepEqual(progress, [0.5]);
  assert.deepEqual(queue.items.map((i) => i.status), ['ready', 'uploading']);
  assert.equal(queue.busy(), true);
});

test('a cancelled upload aborts its request and leaves the queue; the others go on', async () => {
  const { upload, requests } = manualUpload();
  const discarded = [];
  const queue = createUploadQueue({ upload, limits: () => uploadLimits(CONFIG), onDiscard: (item) => discarded.push(item.file.name) });
  const [first, second] = queue.add([file('a.pdf', 10), file('b.pdf', 10)]);
  queue.cancel(first.key);
  await settle();
  assert.equal(requests[0].aborted, true);
  assert.deepEqual(discarded, ['a.pdf']);
  assert.deepEqual(queue.items.map((i) => i.file.name), ['b.pdf']);
  requests[1].resolve({ id: 2 });
  await settle();
  assert.equal(second.status, 'ready');
  assert.deepEqual(queue.takeReady().map((i) => i.attachment.id), [2]);
  assert.deepEqual(queue.items, []);
});

test("a refused upload is failed with the server's reason and can be retried", async () => {
  const { upload, requests } = manualUpload();
  const queue = createUploadQueue({ upload, limits: () => uploadLimits(CONFIG) });
  const [item] = queue.add([file('a.pdf', 10)]);
  requests[0].reject(new Error('Over your storage quota.'));
  await settle();
  assert.deepEqual([item.status, item.error, item.retryable], ['failed', 'Over your storage quota.', true]);
  queue.retry(item.key);
  assert.equal(item.status, 'uploading');
  requests[1].resolve({ id: 3 });
  await settle();
  assert.equal(item.status, 'ready');
});

test('a file refused here never reaches the server and offers no retry', () => {
  const { upload, requests } = manualUpload();
  const queue = createUploadQueue({ upload, limits: () => uploadLimits(CONFIG) });
  const [item] = queue.add([file('big.png', 20 * 1024 * 1024, 'image/png')]);
  assert.equal(requests.length, 0);
  assert.equal(item.status, 'failed');
  assert.equal(item.retryable, false);
  queue.retry(item.key);
  assert.equal(requests.length, 0);
});

test('only uploaded files are taken to send; failed ones stay for a retry', async () => {
  const { upload, requests } = manualUpload();
  const queue = createUploadQueue({ upload, limits: () => uploadLimits(CONFIG) });
  queue.add([file('a.pdf', 10), file('b.pdf', 10)]);
  requests[0].resolve({ id: 1 });
  requests[1].reject(new Error('no'));
  await settle();
  assert.deepEqual(queue.takeReady().map((i) => i.file.name), ['a.pdf']);
  assert.deepEqual(queue.items.map((i) => i.file.name), ['b.pdf']);
});

test('clearing aborts every upload in flight', () => {
  const { upload, requests } = manualUpload();
  const queue = createUploadQueue({ upload, limits: () => uploadLimits(CONFIG) });
  queue.add([file('a.pdf', 10), file('b.pdf', 10)]);
  queue.clear();
  assert.deepEqual(requests.map((r) => r.aborted), [true, true]);
  assert.equal(queue.busy(), false);
});

/** An XMLHttpRequest that records what is done to it and never answers unless told. */
function fakeXhr() {
  const xhr = {
    upload: {}, headers: {}, sent: null, aborted: false,
    open(method, url) {
      Object.assign(xhr, { method, url });
    },
    setRequestHeader(name, value) {
      xhr.headers[name] = value;
    },
    send(body) {
      xhr.sent = body;
    },
    abort() {
      xhr.aborted = true;
    },
  };
  return xhr;
}

function apiWithXhr(xhrs) {
  const { fetch } = fakeFetch({ 'POST /api/auth/refresh': () => jsonResponse(200, { access: jwt(Math.floor(Date.now() / 1000) + 300), refresh: 'r2' }) });
  return createApi({
    baseUrl: 'http://server.test', fetch, storage: memoryStorage({ [REFRESH_KEY]: 'r1' }),
    setTimer: () => 0, clearTimer: () => {}, // no refresh timer keeps the test process alive
    createXhr: () => {
      const xhr = fakeXhr();
      xhrs.push(xhr);
      return xhr;
    },
  });
}

test('api.upload sends the file as multipart with the token, and its signal aborts the request', async () => {
  const xhrs = [];
  const api = apiWithXhr(xhrs);
  const controller = new AbortController();
  const pending = api.upload(new Blob(['%PDF-1.4']), () => {}, { signal: controller.signal });
  for (let i = 0; i < 20 && !xhrs.length; i += 1) await settle();
  const [xhr] = xhrs;
  assert.equal(xhr.method, 'POST');
  assert.equal(xhr.url, 'http://server.test/api/attachments');
  assert.match(xhr.headers.Authorization, /^Bearer /);
  assert.ok(xhr.sent.get('file'));
  controller.abort();
  await assert.rejects(pending, (error) => isAbort(error));
  assert.equal(xhr.aborted, true);
});

test("api.upload resolves with the server's attachment and reports the progress", async () => {
  const xhrs = [];
  const api = apiWithXhr(xhrs);
  const progress = [];
  const pending = api.upload(new Blob(['x']), (fraction) => progress.push(fraction));
  for (let i = 0; i < 20 && !xhrs.length; i += 1) await settle();
  const [xhr] = xhrs;
  xhr.upload.onprogress({ lengthComputable: true, loaded: 1, total: 4 });
  Object.assign(xhr, { status: 201, responseText: '{"id": 7, "kind": "file", "name": "x.bin"}' });
  xhr.onload();
  xhr.onloadend();
  assert.deepEqual(await pending, { id: 7, kind: 'file', name: 'x.bin' });
  assert.deepEqual(progress, [0.25, 1]);
});
