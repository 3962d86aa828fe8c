/**
 * The pure shadow core against the AWS IoT Device Shadow documentation (IoT DG `device-shadow-document`,
 * `device-shadow-mqtt`, `device-shadow-error-messages`): merge with null deletes, per-leaf metadata, the delta,
 * versions, limits and the exact error texts. Table-driven.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DEFAULT_SHADOW_LIMITS, ShadowError, applyUpdate, checkFreshness, computeDelta, getDocument, parseShadowRequestTopic,
  parseSimpleRequest, parseUpdateRequest, shadowTopicPrefix,
} from '../src/shadow/index.ts'
import type { JsonObject, ShadowDocument } from '../src/shadow/index.ts'

const req = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))
const nest = (levels: number): JsonObject => {
  let v: JsonObject = { leaf: 1 }
  for (let i = 1; i < levels; i++) v = { n: v }
  return v
}

test('invalid update requests are refused with AWS status codes and texts', () => {
  const cases: Array<[string, Buffer, number, string]> = [
    ['not JSON', req('{"state":'), 400, 'Invalid JSON'],
    ['JSON but not an object', req('[1,2]'), 400, 'Invalid JSON'],
    ['no state', req({ desired: {} }), 400, 'Missing required node: state'],
    ['state is a string', req({ state: 'on' }), 400, 'State node must be an object'],
    ['desired is an array', req({ state: { desired: [1] } }), 400, 'Desired node must be an object'],
    ['reported is a number', req({ state: { reported: 5 } }), 400, 'Reported node must be an object'],
    ['unknown node in state', req({ state: { delta: {} } }), 400, 'State contains an invalid node'],
    ['null inside an array', req({ state: { desired: { colors: [null, 'RED'] } } }), 400, 'State contains an invalid node'],
    ['negative version', req({ state: {}, version: -1 }), 400, 'Invalid version'],
    ['string version', req({ state: {}, version: '3' }), 400, 'Invalid version'],
    ['65-byte clientToken', req({ state: {}, clientToken: 'x'.repeat(65) }), 400, 'Invalid clientToken'],
    ['7 levels of nesting', req({ state: { reported: nest(7) } }), 400, 'JSON contains too many levels of nesting; maximum is 6'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 415, 'Unsupported documented encoding; supported encoding is UTF-8'],
  ]
  for (const [name, payload, status, message] of cases) {
    assert.throws(() => parseUpdateRequest(payload), (e: unknown) => e instanceof ShadowError && e.status === status && e.message === message, name)
  }
  // The boundaries are allowed: 6 levels, a 64-byte token.
  assert.doesNotThrow(() => parseUpdateRequest(req({ state: { reported: nest(6) }, clientToken: 'x'.repeat(64) })))
})

test('an update merges only the named fields; null deletes a key; arrays replace whole; metadata per leaf', () => {
  const first = applyUpdate(undefined, 0, parseUpdateRequest(req({ state: { desired: { color: 'RED', lights: { on: true, level: 3 }, seq: ['a', 'b'] } } })), 100)
  assert.equal(first.version, 1)
  const second = applyUpdate(first.document, 1, parseUpdateRequest(req({ state: { desired: { lights: { level: null }, seq: ['c'] }, reported: { color: 'GREEN' } } })), 160)
  assert.deepEqual(second.document.desired, { color: 'RED', lights: { on: true }, seq: ['c'] })
  assert.deepEqual(second.document.reported, { color: 'GREEN' })
  // Untouched leaves keep their timestamps; written ones get the new one; arrays are leaves.
  assert.deepEqual(second.document.metadata.desired, { color: { timestamp: 100 }, lights: { on: { timestamp: 100 } }, seq: { timestamp: 160 } })
  assert.deepEqual(second.document.metadata.reported, { color: { timestamp: 160 } })
  assert.equal(second.version, 2)
  // "desired": null removes the section; an emptied section disappears.
  const third = applyUpdate(second.document, 2, parseUpdateRequest(req({ state: { desired: null, reported: { color: null } } })), 200)
  assert.deepEqual(third.document, { metadata: {} })
  // {"state": null} clears everything; the shadow (and its version) remain.
  const cleared = applyUpdate(second.document, 2, parseUpdateRequest(req({ state: null })), 200)
  assert.deepEqual(cleared.document, { metadata: {} })
  assert.equal(cleared.version, 3)
})

test('/update/accepted echoes the request with metadata and the clientToken; /documents has previous and current', () => {
  const first = applyUpdate(undefined, 0, parseUpdateRequest(req({ state: { reported: { temp: 21 } } })), 100)
  const out = applyUpdate(first.document, 1, parseUpdateRequest(req({ state: { desired: { temp: 19, fan: null } }, clientToken: 'tok-1', version: 1 })), 130)
  assert.deepEqual(out.accepted, {
    state: { desired: { temp: 19, fan: null } },
    metadata: { desired: { temp: { timestamp: 130 }, fan: { timestamp: 130 } } },
    version: 2, timestamp: 130, clientToken: 'tok-1',
  })
  assert.deepEqual(out.documents, {
    previous: { state: { reported: { temp: 21 } }, metadata: { reported: { temp: { timestamp: 100 } } }, version: 1 },
    current: { state: { desired: { temp: 19 }, reported: { temp: 21 } }, metadata: { desired: { temp: { timestamp: 130 } }, reported: { temp: { timestamp: 100 } } }, version: 2 },
    timestamp: 130, clientToken: 'tok-1',
  })
})

test('the delta: differing desired fields with the path to the root, missing ones included, arrays as values', () => {
  const desired = { color: 'RED', state: 'STOP', lights: { color: { r: 255, g: 255, b: 255 } }, seq: [1, 2] }
  const reported = { color: 'GREEN', engine: 'ON', lights: { color: { r: 255, g: 0, b: 255 } }, seq: [1, 2] }
  const meta = { color: { timestamp: 1 }, state: { timestamp: 2 }, lights: { color: { r: { timestamp: 3 }, g: { timestamp: 4 }, b: { timestamp: 5 } } }, seq: { timestamp: 6 } }
  assert.deepEqual(computeDelta(desired, reported, meta), {
    state: { color: 'RED', state: 'STOP', lights: { color: { g: 255 } } },
    metadata: { color: { timestamp: 1 }, state: { timestamp: 2 }, lights: { color: { g: { timestamp: 4 } } } },
  })
  assert.equal(computeDelta({ a: 1 }, { a: 1, b: 2 }, {}), undefined)
  assert.deepEqual(computeDelta({ seq: [1, 2] }, { seq: [2, 1] }, {})?.state, { seq: [1, 2] })
})

test('/update/delta carries the whole delta when desired was written, and nothing when state converges', () => {
  const a = applyUpdate(undefined, 0, parseUpdateRequest(req({ state: { desired: { color: 'RED', power: 'on' } } })), 10)
  assert.deepEqual(a.delta?.state, { color: 'RED', power: 'on' })
  const b = applyUpdate(a.document, 1, parseUpdateRequest(req({ state: { reported: { color: 'RED' } } })), 20)
  assert.equal(b.delta, undefined, 'a report alone publishes no delta')
  const c = applyUpdate(b.document, 2, parseUpdateRequest(req({ state: { desired: { color: 'BLUE' } }, clientToken: 'c' })), 30)
  // "It contains all of these attributes, regardless of whether these attributes were contained in the current update".
  assert.deepEqual(c.delta, { version: 3, timestamp: 30, state: { color: 'BLUE', power: 'on' }, metadata: { color: { timestamp: 30 }, power: { timestamp: 10 } }, clientToken: 'c' })
  const d = applyUpdate(c.document, 3, parseUpdateRequest(req({ state: { reported: { color: 'BLUE', power: 'on' } } })), 40)
  assert.equal(d.delta, undefined)
  // Deleting a reported field that desired still has brings it back into the delta.
  const e = applyUpdate(d.document, 4, parseUpdateRequest(req({ state: { reported: { power: null } } })), 50)
  assert.deepEqual(e.delta?.state, { power: 'on' })
})

test('the 8 KB state limit counts desired and reported after the merge, not metadata', () => {
  const big = 'x'.repeat(4000)
  const a = applyUpdate(undefined, 0, parseUpdateRequest(req({ state: { desired: { a: big } } })), 1)
  const b = applyUpdate(a.document, 1, parseUpdateRequest(req({ state: { reported: { a: big } } })), 1)
  assert.ok(b.version === 2)
  assert.throws(() => applyUpdate(b.document, 2, parseUpdateRequest(req({ state: { reported: { b: 'y'.repeat(300) } } })), 1),
    (e: unknown) => e instanceof ShadowError && e.status === 413 && e.message === 'The payload exceeds the maximum size allowed')
  assert.equal(DEFAULT_SHADOW_LIMITS.maxStateBytes, 8192)
})

test('GET: delta and its metadata, and our staleness extension from the reported timestamps', () => {
  const doc: ShadowDocument = {
    desired: { temp: 19 },
    reported: { temp: 21, hvac: { mode: 'heat' } },
    metadata: { desired: { temp: { timestamp: 900 } }, reported: { temp: { timestamp: 950 }, hvac: { mode: { timestamp: 700 } } } },
  }
  const g = getDocument(doc, 7, 1000, 'tok')
  assert.deepEqual(g.state, { desired: { temp: 19 }, reported: { temp: 21, hvac: { mode: 'heat' } }, delta: { temp: 19 } })
  assert.deepEqual((g.metadata as JsonObject).delta, { temp: { timestamp: 900 } })
  assert.deepEqual(g.thingward, { reportedAgeSeconds: { temp: 50, hvac: { mode: 300 } }, oldestReportedAgeSeconds: 300 })
  assert.equal(g.version, 7)
  assert.equal(g.clientToken, 'tok')
  assert.doesNotThrow(() => checkFreshness(doc, 1000, 300))
  assert.throws(() => checkFreshness(doc, 1000, 299), (e: unknown) => e instanceof ShadowError && e.status === 412 && e.details.oldestReportedAgeSeconds === 300)
  assert.throws(() => checkFreshness({ desired: { a: 1 }, metadata: {} }, 1000, 10), (e: unknown) => e instanceof ShadowError && e.status === 412)
})

test('a __proto__ key is data, never a prototype', () => {
  const a = applyUpdate(undefined, 0, parseUpdateRequest(req('{"state":{"reported":{"__proto__":{"polluted":true},"x":1}}}')), 1)
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
  assert.ok(Object.hasOwn(a.document.reported ?? {}, '__proto__'))
  assert.equal(JSON.stringify(a.document.reported), '{"__proto__":{"polluted":true},"x":1}')
})

test('reserved topics: classic and named request topics parse; response topics and bad names do not', () => {
  assert.deepEqual(parseShadowRequestTopic('$aws/things/lamp-1/shadow/update'), { target: { thingName: 'lamp-1' }, operation: 'update' })
  assert.deepEqual(parseShadowRequestTopic('$aws/things/lamp-1/shadow/name/config/get'), { target: { thingName: 'lamp-1', shadowName: 'config' }, operation: 'get' })
  for (const t of ['$aws/things/lamp-1/shadow/update/accepted', '$aws/things/lamp-1/shadow/name/config/delete/rejected', '$aws/things/lamp-1/jobs/get',
    '$aws/things/lamp 1/shadow/get', '$aws/things/lamp-1/shadow/name//get', '$aws/things//shadow/get', 'things/lamp-1/shadow/get']) {
    assert.equal(parseShadowRequestTopic(t), undefined, t)
  }
  assert.equal(shadowTopicPrefix({ thingName: 't', shadowName: 's' }), '$aws/things/t/shadow/name/s')
  assert.deepEqual(parseSimpleRequest(Buffer.alloc(0)), {})
  assert.deepEqual(parseSimpleRequest(req({ clientToken: 'a', maxAgeSeconds: 5 })), { clientToken: 'a', maxAgeSeconds: 5 })
})
