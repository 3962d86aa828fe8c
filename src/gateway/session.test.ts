import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parser as createParser } from 'mqtt-packet'
import type { IPublishPacket, Packet } from 'mqtt-packet'
import { RoutedMessage } from './session.ts'

function decode (bytes: Buffer, version: 4 | 5): IPublishPacket {
  const p = createParser({ protocolVersion: version })
  const out: Packet[] = []
  p.on('packet', (x: Packet) => out.push(x))
  p.on('error', (err: Error) => { throw err })
  p.parse(bytes)
  assert.equal(out.length, 1)
  const packet = out[0]
  assert.equal(packet.cmd, 'publish')
  return packet as IPublishPacket
}

test('a routed message encodes each subscriber its own PUBLISH: own Packet Identifier, buffers never shared between QoS 1 deliveries', () => {
  const m = new RoutedMessage('building/1/floor/2/temperature/t-1', Buffer.from('21.5'), 1, false, undefined, 0, undefined)
  const sent: Buffer[] = []
  // Four 3.1.1 subscribers at QoS 1, then two MQTT 5 ones, then QoS 0 for both versions (twice each).
  for (const [version, qos, id] of [[4, 1, 7], [4, 1, 8], [4, 1, 9], [4, 1, 10], [5, 1, 1], [5, 1, 2], [4, 0, 0], [4, 0, 0], [5, 0, 0], [5, 0, 0]] as const) {
    const before = sent.map(b => Buffer.from(b))
    const bytes = m.encode(version, qos, false, false, id, undefined, 0)
    const p = decode(bytes, version)
    assert.equal(p.topic, 'building/1/floor/2/temperature/t-1')
    assert.equal(String(p.payload), '21.5')
    assert.equal(p.qos, qos)
    if (qos === 1) {
      assert.equal(p.messageId, id)
      assert.ok(sent.every(b => b !== bytes), 'a QoS 1 delivery gets a buffer of its own')
    }
    // Encoding for a later subscriber never changes what an earlier one was handed.
    sent.forEach((b, i) => assert.deepEqual(b, before[i]))
    sent.push(bytes)
  }
  // A re-sent delivery carries DUP and is encoded afresh.
  const dup = decode(m.encode(4, 1, false, true, 7, undefined, 0), 4)
  assert.equal(dup.dup, true)
  assert.equal(dup.messageId, 7)
})

test('MQTT 5 subscription identifiers and the remaining expiry interval are per delivery, never cached', () => {
  const m = new RoutedMessage('a/b', Buffer.from('x'), 1, false, undefined, 10_000, undefined)
  const first = decode(m.encode(5, 1, false, false, 1, [3], 4_000), 5)
  const second = decode(m.encode(5, 1, false, false, 2, [4, 5], 7_000), 5)
  assert.deepEqual(first.properties?.subscriptionIdentifier, 3)
  assert.deepEqual(second.properties?.subscriptionIdentifier, [4, 5])
  assert.equal(first.properties?.messageExpiryInterval, 6)
  assert.equal(second.properties?.messageExpiryInterval, 3)
})
