import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generate } from 'mqtt-packet'
import { decodeFrame, decodePubackFast, decodePublishFast, encodePlainPublish, encodePubackSuccess, FrameReader, publishPacketIdOffset, publishTopicIsUtf8 } from './framing.ts'

function frames (reader: FrameReader, chunks: Buffer[]): { frames: Buffer[], error: string | undefined } {
  const out: Buffer[] = []
  let error: string | undefined
  for (const c of chunks) {
    error = reader.push(c, (f) => { out.push(Buffer.from(f)); return true })
    if (error !== undefined) break
  }
  return { frames: out, error }
}

const pub = (size: number): Buffer => generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(size, 7), qos: 0, retain: false, dup: false })

test('frames survive any chunking, byte by byte included', () => {
  const stream = Buffer.concat([pub(0), pub(200), pub(20000), Buffer.from([0xc0, 0x00])])
  for (const size of [1, 2, 3, 7, 64, 1000, stream.length]) {
    const chunks: Buffer[] = []
    for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size))
    const r = frames(new FrameReader(1 << 20), chunks)
    assert.equal(r.error, undefined)
    assert.deepEqual(r.frames.map((f) => f.length), [pub(0).length, pub(200).length, pub(20000).length, 2], `chunk ${size}`)
  }
})

test('a packet over the maximum is refused from its fixed header, before the body arrives', () => {
  const reader = new FrameReader(1000)
  const big = pub(5000)
  // Only the fixed header (1 byte + 2 length bytes) is pushed: the refusal must not wait for the body.
  assert.equal(reader.push(big.subarray(0, 3), () => true), 'packet-too-large')
  assert.equal(reader.bufferedBytes, 0)
})

test('MQTT 5 §1.5.5: a Remaining Length with a fifth byte is malformed', () => {
  assert.equal(new FrameReader(1 << 30).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), () => true), 'malformed-length')
})

test('decodeFrame rejects garbage and recovers for the next frame', () => {
  const bad = Buffer.from([0x82, 0x02, 0x00, 0x01]) // SUBSCRIBE without a payload
  const r1 = decodeFrame(Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61]), 4) // QoS 3
  assert.equal(r1.ok, false)
  const r2 = decodeFrame(bad, 4)
  assert.equal(r2.ok, true) // mqtt-packet accepts it with no subscriptions; the broker refuses it [MQTT-3.8.3-3]
  const r3 = decodeFrame(pub(3), 4)
  assert.ok(r3.ok && r3.packet.cmd === 'publish')
})

test('publishPacketIdOffset finds the packet id after the topic', () => {
  const enc = generate({ cmd: 'publish', topic: 'abc/def', payload: Buffer.alloc(300), qos: 1, messageId: 0x1234, retain: false, dup: false })
  assert.equal(enc.readUInt16BE(publishPacketIdOffset(enc)), 0x1234)
})

test('the fast PUBLISH decoder agrees with mqtt-packet on every shape it takes, and declines the rest', () => {
  const cases: Array<{ v: 4 | 5, p: Parameters<typeof generate>[0] }> = []
  for (const v of [4, 5] as const) {
    for (const qos of [0, 1] as const) {
      for (const retain of [false, true]) {
        for (const topic of ['a', 'building/1/floor/2/temperature/t-1', 'é/ü/€/𝄞', 'x'.repeat(300)]) {
          for (const size of [0, 1, 127, 128, 16_383, 16_384, 70_000]) {
            cases.push({ v, p: { cmd: 'publish', topic, payload: Buffer.alloc(size, size & 0xff), qos, retain, dup: qos === 1 && size === 1, messageId: qos === 1 ? 1 + (size % 65_000) : undefined } })
          }
        }
      }
    }
  }
  for (const { v, p } of cases) {
    const frame = generate(p, { protocolVersion: v })
    let hb = 1
    while ((frame[hb] & 0x80) !== 0) hb++
    hb++
    const fast = decodePublishFast(frame, hb, v)
    const ref = decodeFrame(frame, v)
    assert.ok(fast !== undefined && ref.ok && ref.packet.cmd === 'publish')
    const r = ref.packet
    assert.deepEqual({ topic: fast.topic, qos: fast.qos, dup: fast.dup, retain: fast.retain, messageId: fast.messageId, payload: Buffer.from(fast.payload) },
      { topic: r.topic, qos: r.qos, dup: r.dup, retain: r.retain, messageId: r.messageId ?? 0, payload: Buffer.from(r.payload) })
    // The encoder writes exactly what the general encoder writes for the same message.
    const again = encodePlainPublish(Buffer.from(r.topic), Buffer.from(r.payload), r.qos, r.retain, r.dup, r.messageId ?? 0, v)
    assert.deepEqual(again, frame)
  }
  // Declined: MQTT 5 properties, QoS 3, a topic length past the end, a missing Packet Identifier.
  const withProps = generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { contentType: 'a' } }, { protocolVersion: 5 })
  assert.equal(decodePublishFast(withProps, 2, 5), undefined)
  assert.equal(decodePublishFast(Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61]), 2, 4), undefined)
  assert.equal(decodePublishFast(Buffer.from([0x30, 0x03, 0x00, 0x09, 0x61]), 2, 4), undefined)
  assert.equal(decodePublishFast(Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61]), 2, 4), undefined)
})

test('the fast PUBACK decoder reads the plain shapes and declines reason codes, properties and bad flags', () => {
  assert.equal(decodePubackFast(Buffer.from([0x40, 0x02, 0x12, 0x34])), 0x1234)
  assert.equal(decodePubackFast(Buffer.from([0x40, 0x03, 0x12, 0x34, 0x00])), 0x1234)
  assert.equal(decodePubackFast(Buffer.from([0x40, 0x03, 0x12, 0x34, 0x10])), -1)
  assert.equal(decodePubackFast(Buffer.from([0x40, 0x04, 0x12, 0x34, 0x00, 0x00])), -1)
  assert.equal(decodePubackFast(Buffer.from([0x42, 0x02, 0x12, 0x34])), -1)
  assert.deepEqual(encodePubackSuccess(0xabcd), generate({ cmd: 'puback', messageId: 0xabcd }, { protocolVersion: 4 }))
})

test('decodeFrame refuses a Packet Identifier cut off by the Remaining Length, whatever the packet type', () => {
  // mqtt-packet itself reports these as messageId -1.
  assert.equal(decodeFrame(Buffer.from([0x32, 0x04, 0x00, 0x01, 0x61, 0x00]), 4).ok, false) // PUBLISH QoS 1
  assert.equal(decodeFrame(Buffer.from([0x40, 0x01, 0x00]), 4).ok, false) // PUBACK
  assert.equal(decodeFrame(Buffer.from([0x82, 0x01, 0x00]), 4).ok, false) // SUBSCRIBE
  assert.equal(decodeFrame(Buffer.from([0x40, 0x02, 0x00, 0x07]), 4).ok, true)
})

test('[MQTT-1.5.3-1] publishTopicIsUtf8 checks the raw topic bytes, wherever the first non-ASCII byte is', () => {
  const frameWith = (topic: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from('payload')])
    return Buffer.concat([Buffer.from([0x30, body.length]), body])
  }
  const cases: Array<[string, Buffer, boolean]> = [
    ['ASCII', Buffer.from('building/1/floor/2/temp'), true],
    ['two-byte and three-byte characters', Buffer.from('bâtiment/étage/温度'), true],
    ['a four-byte character after an ASCII prefix', Buffer.from('sensors/\u{1F321}'), true],
    ['a lone continuation byte after an ASCII prefix', Buffer.concat([Buffer.from('building/'), Buffer.from([0x80])]), false],
    ['a truncated sequence at the end', Buffer.concat([Buffer.from('a/'), Buffer.from([0xe6, 0xb8])]), false],
    ['an overlong encoding of "/"', Buffer.concat([Buffer.from('a'), Buffer.from([0xc0, 0xaf]), Buffer.from('b')]), false],
    ['a UTF-16 surrogate encoded in UTF-8', Buffer.concat([Buffer.from('a/'), Buffer.from([0xed, 0xa0, 0x80])]), false],
    ['invalid at the first byte', Buffer.from([0xff, 0x61]), false],
  ]
  for (const [name, topic, ok] of cases) assert.equal(publishTopicIsUtf8(frameWith(topic), 2), ok, name)
  // A topic length running past the frame is left to the decoder, which refuses the frame as malformed.
  const cut = frameWith(Buffer.from('abc'))
  cut[3] = 200
  assert.equal(publishTopicIsUtf8(cut, 2), true)
  assert.equal(decodeFrame(cut, 4).ok, false)
})
