import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chainEvent, verifyChain } from './chain.ts'

function makeChain (n: number): Array<{ seq: number, body: string, hash: string }> {
  const rows: Array<{ seq: number, body: string, hash: string }> = []
  let prev: { seq: number, hash: string } | undefined
  for (let i = 0; i < n; i++) {
    const { record, body, hash } = chainEvent(prev, 1_700_000_000_000 + i, { action: 'iot.CreateThing', actor: 'user/admin', outcome: 'success', target: `thing-${i}` })
    rows.push({ seq: record.seq, body, hash })
    prev = { seq: record.seq, hash }
  }
  return rows
}

test('an untouched chain verifies', () => {
  assert.equal(verifyChain(makeChain(20)), undefined)
})

const tampering: Array<[string, (rows: Array<{ seq: number, body: string, hash: string }>) => Array<{ seq: number, body: string, hash: string }>, number]> = [
  ['an altered field', r => { r[5] = { ...r[5], body: r[5].body.replace('thing-5', 'thing-X') }; return r }, 6],
  ['an altered field with a recomputed hash', r => {
    const body = r[5].body.replace('thing-5', 'thing-X')
    r[5] = { ...r[5], body, hash: chainEvent(undefined, 0, { action: 'x', actor: 'y', outcome: 'success' }).hash }
    return r
  }, 6],
  ['a deleted record', r => { r.splice(7, 1); return r }, 9],
  ['two swapped records', r => { const a = r[3]; r[3] = r[4]; r[4] = a; return r }, 5],
  ['an inserted forgery', r => {
    const forged = chainEvent({ seq: 10, hash: r[9].hash }, 0, { action: 'iot.DeleteThing', actor: 'attacker', outcome: 'success' })
    r.splice(10, 0, { seq: 11, body: forged.body, hash: forged.hash })
    return r
  }, 11],
]
for (const [what, mutate, firstBad] of tampering) {
  test(`detects ${what} and names the first bad record`, () => {
    const bad = verifyChain(mutate(makeChain(20)))
    assert.equal(bad?.seq, firstBad)
  })
}
