import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chainEvent, ChainWalker, encodeRecord, GENESIS_HASH, hashBody, ProblemKind, recordTimeMs, thingOf, verifyChain } from './chain.ts'
import type { ChainProblem, EventRow } from './chain.ts'
import { canonicalJson } from '../core/index.ts'

type Row = { seq: number, body: string, hash: string }

function makeChain (n: number): Row[] {
  const rows: Row[] = []
  let prev: { seq: number, hash: string } | undefined
  for (let i = 0; i < n; i++) {
    const { record, body, hash } = chainEvent(prev, 1_700_000_000_000 + i, { action: 'iot.CreateThing', actor: 'user/admin', outcome: 'success', target: `thing-${i + 1}` })
    rows.push({ seq: record.seq, body, hash })
    prev = { seq: record.seq, hash }
  }
  return rows
}

test('an untouched chain verifies', () => {
  assert.equal(verifyChain(makeChain(20)), undefined)
})

test('the record encoding puts the chain members first, then the event in canonical JSON', () => {
  const body = encodeRecord(7, 'a'.repeat(64), 123, { outcome: 'success', actor: 'system', action: 'x.Y', details: { b: 1, a: [2, { d: 1, c: 0 }] } })
  assert.equal(body, `{"seq":7,"prevHash":"${'a'.repeat(64)}","timeMs":123,"action":"x.Y","actor":"system","details":{"a":[2,{"c":0,"d":1}],"b":1},"outcome":"success"}`)
  assert.deepEqual(JSON.parse(body), { seq: 7, prevHash: 'a'.repeat(64), timeMs: 123, action: 'x.Y', actor: 'system', details: { a: [2, { c: 0, d: 1 }], b: 1 }, outcome: 'success' })
  // An event cannot smuggle its own chain members.
  const sneaky = { action: 'x', actor: 'y', outcome: 'success', seq: 99, prevHash: 'f'.repeat(64), timeMs: 1 } as unknown as Parameters<typeof encodeRecord>[3]
  assert.ok(encodeRecord(1, GENESIS_HASH, 5, sneaky).startsWith(`{"seq":1,"prevHash":"${GENESIS_HASH}","timeMs":5,"action":"x"`))
  assert.throws(() => encodeRecord(0, GENESIS_HASH, 1, { action: 'x', actor: 'y', outcome: 'success' }), TypeError)
  assert.throws(() => encodeRecord(1, 'short', 1, { action: 'x', actor: 'y', outcome: 'success' }), TypeError)
})

test('the thing of an event: explicit, from a thing ARN, or details.thingName', () => {
  assert.equal(thingOf({ action: 'a', actor: 'b', outcome: 'success', thing: 't1' }), 't1')
  assert.equal(thingOf({ action: 'a', actor: 'b', outcome: 'success', target: 'arn:aws:iot:r:1:thing/lamp-1' }), 'lamp-1')
  assert.equal(thingOf({ action: 'a', actor: 'b', outcome: 'success', target: 'arn:aws:iot:r:1:thinggroup/g', details: { thingName: 'lamp-2' } }), 'lamp-2')
  assert.equal(thingOf({ action: 'a', actor: 'b', outcome: 'success', target: 'arn:aws:iot:r:1:policy/p' }), undefined)
})

/** Tampering as it happens in a table keyed by seq: the seq column stays, contents move. */
const tampering: Array<[string, (r: Row[]) => Row[], number, ProblemKind]> = [
  ['an altered field', r => { r[5] = { ...r[5], body: r[5].body.replace('thing-6', 'thing-X') }; return r }, 6, ProblemKind.Altered],
  ['an altered field with its hash recomputed', r => {
    const body = r[5].body.replace('thing-6', 'thing-X')
    r[5] = { ...r[5], body, hash: hashBody(body) }
    return r
  }, 6, ProblemKind.Altered],
  ['a deleted record', r => { r.splice(7, 1); return r }, 8, ProblemKind.Deleted],
  ['a deleted record with later ones renumbered', r => { r.splice(7, 1); return r.map((x, i) => ({ ...x, seq: i + 1 })) }, 8, ProblemKind.Deleted],
  ['two swapped records', r => { const a = r[3]; r[3] = { ...r[4], seq: 4 }; r[4] = { ...a, seq: 5 }; return r }, 4, ProblemKind.Reordered],
  ['an inserted forgery with later records renumbered', r => {
    const forged = chainEvent({ seq: 10, hash: r[9].hash }, 0, { action: 'iot.DeleteThing', actor: 'attacker', outcome: 'success' })
    r.splice(10, 0, { seq: 11, body: forged.body, hash: forged.hash })
    return r.map((x, i) => ({ ...x, seq: i + 1 }))
  }, 11, ProblemKind.Inserted],
  ['a replaced record', r => {
    const forged = chainEvent({ seq: 9, hash: r[8].hash }, 0, { action: 'iot.DeleteThing', actor: 'attacker', outcome: 'success' })
    r[9] = { seq: 10, body: forged.body, hash: forged.hash }
    return r
  }, 10, ProblemKind.Altered],
]
for (const [what, mutate, firstBad, kind] of tampering) {
  test(`detects ${what} and names the first bad record`, () => {
    const bad = verifyChain(mutate(makeChain(20)))
    assert.equal(bad?.seq, firstBad, bad?.problem)
    assert.equal(bad?.kind, kind)
  })
}

test('the walker accepts pages, checks a start anchor, and watches external copies', () => {
  const rows = makeChain(10)
  const asRows = (r: Row[]): EventRow[] => r.map(x => [x.seq, x.body, x.hash] as const)
  const w = new ChainWalker()
  assert.equal(w.push(asRows(rows.slice(0, 4))), undefined)
  assert.equal(w.push(asRows(rows.slice(4))), undefined)
  assert.deepEqual(w.head, { seq: 10, hash: rows[9].hash })
  assert.equal(w.count, 10)
  // Starting from a signed hash that is not the predecessor's: the first record is unlinked.
  const p = new ChainWalker({ seq: 4, hash: 'e'.repeat(64) }).push(asRows(rows.slice(4))) as ChainProblem
  assert.equal(p.kind, ProblemKind.Unlinked)
  assert.equal(p.seq, 5)
  // A copy held elsewhere that disagrees names that record.
  const watched = new ChainWalker(undefined, new Map([[3, 'f'.repeat(64)]])).push(asRows(rows)) as ChainProblem
  assert.equal(watched.seq, 3)
})

test('records written before format 1 (all keys sorted) still verify, exactly', () => {
  let prev = { seq: 0, hash: GENESIS_HASH }
  const rows: Row[] = []
  for (let i = 1; i <= 5; i++) {
    const body = canonicalJson({ action: 'iot.CreateThing', actor: 'user/admin', outcome: 'success', seq: i, timeMs: i, prevHash: prev.hash })
    rows.push({ seq: i, body, hash: hashBody(body) })
    prev = { seq: i, hash: hashBody(body) }
  }
  assert.equal(verifyChain(rows), undefined)
  const body = rows[2].body.replace(`"prevHash":"${rows[1].hash}"`, `"prevHash":"${'0'.repeat(64)}"`)
  rows[2] = { seq: 3, body, hash: hashBody(body) }
  assert.equal(verifyChain(rows)?.seq, 2, 'record 3 links elsewhere: record 2 was altered and rehashed, or 3 was')
})

test('the fast record encoder writes exactly the canonical JSON of the event (randomized)', () => {
  let seed = 42
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const strings = ['', 'a', 'é', '"quoted"', 'back\\slash', 'line\nfeed', '\u0001', '\ud83d\ude00', '\ud800', 'prevHash', '{"seq":1,']
  const value = (depth: number): unknown => {
    switch (rnd(depth > 2 ? 5 : 7)) {
      case 0: return strings[rnd(strings.length)]
      case 1: return rnd(1000) - 500
      case 2: return rnd(2) === 0
      case 3: return null
      case 4: return rnd(100) / 7
      case 5: return Array.from({ length: rnd(4) }, () => value(depth + 1))
      default: return Object.fromEntries(Array.from({ length: rnd(5) }, () => [strings[rnd(strings.length)] + String(rnd(9)), rnd(6) === 0 ? undefined : value(depth + 1)]))
    }
  }
  for (let i = 0; i < 500; i++) {
    const e: Record<string, unknown> = { action: strings[rnd(strings.length)], actor: 'a', outcome: 'success' }
    for (const k of ['details', 'errorCode', 'kind', 'occurredMs', 'reason', 'requestId', 'resources', 'sourceIp', 'statement', 'target', 'thing']) {
      if (rnd(2) === 0) e[k] = k === 'details' ? value(0) : k === 'resources' ? [strings[rnd(strings.length)]] : k === 'occurredMs' ? rnd(10_000) : rnd(5) === 0 ? undefined : strings[rnd(strings.length)]
    }
    if (rnd(10) === 0) e.extra = { z: 1, a: [2] }
    const body = encodeRecord(i + 1, GENESIS_HASH, 7, e as unknown as Parameters<typeof encodeRecord>[3])
    const expected = canonicalJson(e)
    assert.equal(body, `{"seq":${i + 1},"prevHash":"${GENESIS_HASH}","timeMs":7${expected === '{}' ? '' : `,${expected.slice(1)}`}`)
    assert.deepEqual(JSON.parse(body), JSON.parse(`{"seq":${i + 1},"prevHash":"${GENESIS_HASH}","timeMs":7${expected === '{}' ? '' : `,${expected.slice(1)}`}`))
  }
})

test('chainEvent returns the record its body encodes, and the hash of that body', () => {
  const e = { action: 'iot.UpdateThing', actor: 'user/admin', outcome: 'success', target: 'arn:aws:iot:r:1:thing/t', details: { b: [1, { z: 0, a: 'é' }], a: null } } as const
  const { record, body, hash } = chainEvent({ seq: 4, hash: 'c'.repeat(64), timeMs: 1 }, 99, e)
  assert.deepEqual(record, JSON.parse(body))
  assert.equal(body, encodeRecord(5, 'c'.repeat(64), 99, e))
  assert.equal(hash, hashBody(body))
})

test('recordTimeMs reads the time of a format-1 record from its prefix and of an older record by parsing', () => {
  assert.equal(recordTimeMs(encodeRecord(3, GENESIS_HASH, -5, { action: 'a', actor: 'b', outcome: 'success' })), -5)
  assert.equal(recordTimeMs(encodeRecord(12, 'a'.repeat(64), 1_700_000_000_123, { action: 'a', actor: 'b', outcome: 'success', occurredMs: 7 })), 1_700_000_000_123)
  assert.equal(recordTimeMs(canonicalJson({ action: 'a', actor: 'b', outcome: 'success', seq: 1, prevHash: GENESIS_HASH, timeMs: 42 })), 42)
  assert.equal(recordTimeMs('not json'), undefined)
  assert.equal(recordTimeMs('null'), undefined)
  assert.equal(recordTimeMs('{"seq":1}'), undefined)
})
