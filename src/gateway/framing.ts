/**
 * MQTT framing on top of mqtt-packet. `FrameReader` cuts the byte stream into whole control packets itself,
 * reading the fixed header and the Remaining Length varint (MQTT 3.1.1 §2.2.3, MQTT 5 §1.5.5) so that a packet
 * larger than the configured maximum is refused *before* its body is buffered. Complete frames are then decoded
 * by one shared mqtt-packet parser per protocol version (parsing is synchronous and a frame is always complete,
 * so no parser state is kept per connection).
 */
import { isUtf8 } from 'node:buffer'
import { generate, parser as createParser } from 'mqtt-packet'
import type { IPublishPacket, Packet, Parser } from 'mqtt-packet'

/** Control packet types (MQTT 5 §2.1.2, Table 2-1). */
export const PacketType = {
  Connect: 1,
  Connack: 2,
  Publish: 3,
  Puback: 4,
  Pubrec: 5,
  Pubrel: 6,
  Pubcomp: 7,
  Subscribe: 8,
  Suback: 9,
  Unsubscribe: 10,
  Unsuback: 11,
  Pingreq: 12,
  Pingresp: 13,
  Disconnect: 14,
  Auth: 15,
} as const
export type PacketType = (typeof PacketType)[keyof typeof PacketType]

/** Why the stream cannot be framed. Both require closing the network connection. */
export type FrameError = 'packet-too-large' | 'malformed-length'

/**
 * Receives frames. `headerBytes` is the size of the fixed header (1 + varint bytes), so a handler can find the
 * variable header without decoding. Return false to stop framing (the connection is closing).
 */
export type FrameSink = (frame: Buffer, headerBytes: number) => boolean

/**
 * Splits a byte stream into MQTT control packets. Allocation: a frame that arrives whole inside one chunk is
 * passed on as a view of that chunk; otherwise exactly one buffer of the frame's declared size is allocated,
 * which `maxPacketBytes` bounds.
 */
export class FrameReader {
  #maxPacketBytes: number
  /** Fixed-header bytes carried over from the previous chunk (at most 5). */
  #hdr: Buffer | undefined = undefined
  #hdrLen = 0
  /** Partially received frame. */
  #body: Buffer | undefined = undefined
  #bodyHeaderBytes = 0
  #filled = 0

  constructor (maxPacketBytes: number) { this.#maxPacketBytes = maxPacketBytes }

  /** Changes the limit (after CONNECT, when the protocol version is known). */
  set maxPacketBytes (value: number) { this.#maxPacketBytes = value }

  /** Bytes held for an incomplete frame (for memory accounting). */
  get bufferedBytes (): number { return (this.#body?.length ?? 0) + this.#hdrLen }

  /** Feeds a chunk; calls `sink` for each complete frame. Returns an error when the stream must be closed. */
  push (chunk: Buffer, sink: FrameSink): FrameError | undefined {
    let off = 0
    const len = chunk.length
    while (off < len) {
      if (this.#body !== undefined) {
        const body = this.#body
        const n = Math.min(body.length - this.#filled, len - off)
        chunk.copy(body, this.#filled, off, off + n)
        this.#filled += n
        off += n
        if (this.#filled < body.length) return undefined
        this.#body = undefined
        if (!sink(body, this.#bodyHeaderBytes)) return undefined
        continue
      }
      // Parse the fixed header: one type byte and a 1–4 byte Remaining Length [MQTT-1.5.5 / MQTT 3.1.1 §2.2.3].
      let header: Buffer
      let hOff: number
      let hAvail: number
      if (this.#hdrLen > 0) {
        const hdr = this.#hdr as Buffer
        while (this.#hdrLen < 5 && off < len) {
          hdr[this.#hdrLen++] = chunk[off++]
          if (this.#hdrLen >= 2 && (hdr[this.#hdrLen - 1] & 0x80) === 0) break
        }
        header = hdr
        hOff = 0
        hAvail = this.#hdrLen
      } else {
        header = chunk
        hOff = off
        hAvail = len - off
      }
      let remaining = 0
      let mul = 1
      let varBytes = 0
      let complete = false
      while (varBytes < 4 && 1 + varBytes < hAvail) {
        const b = header[hOff + 1 + varBytes]
        varBytes++
        remaining += (b & 0x7f) * mul
        mul *= 128
        if ((b & 0x80) === 0) { complete = true; break }
      }
      if (!complete) {
        // A fifth length byte is malformed [MQTT 5 §1.5.5: at most four bytes].
        if (varBytes === 4) return 'malformed-length'
        if (this.#hdrLen === 0) {
          this.#hdr ??= Buffer.allocUnsafe(5)
          chunk.copy(this.#hdr, 0, off, len)
          this.#hdrLen = len - off
        }
        return undefined
      }
      const headerBytes = 1 + varBytes
      const total = headerBytes + remaining
      if (total > this.#maxPacketBytes) return 'packet-too-large'
      if (this.#hdrLen > 0) {
        // The header straddled chunks: start a body buffer with it; `off` already points past the header.
        const body = Buffer.allocUnsafe(total)
        ;(this.#hdr as Buffer).copy(body, 0, 0, headerBytes)
        this.#hdrLen = 0
        this.#body = body
        this.#bodyHeaderBytes = headerBytes
        this.#filled = headerBytes
        if (total === headerBytes) {
          this.#body = undefined
          if (!sink(body, headerBytes)) return undefined
        }
        continue
      }
      if (len - off >= total) {
        const frame = chunk.subarray(off, off + total)
        off += total
        if (!sink(frame, headerBytes)) return undefined
        continue
      }
      const body = Buffer.allocUnsafe(total)
      chunk.copy(body, 0, off, len)
      this.#body = body
      this.#bodyHeaderBytes = headerBytes
      this.#filled = len - off
      return undefined
    }
    return undefined
  }
}

let lastPacket: Packet | undefined
let lastError: Error | undefined

function newParser (protocolVersion: 4 | 5): Parser {
  const p = createParser({ protocolVersion })
  p.on('packet', (packet: Packet) => { lastPacket = packet })
  p.on('error', (err: Error) => { lastError = err })
  return p
}

const parsers: { v4: Parser, v5: Parser, connect: Parser } = {
  v4: newParser(4),
  v5: newParser(5),
  connect: newParser(4),
}

/** A decoded packet, or the decoder's complaint (the packet is malformed: close the connection). */
export type DecodeResult = { readonly ok: true, readonly packet: Packet } | { readonly ok: false, readonly error: string }

/**
 * Decodes one complete frame. `version` selects the MQTT 5 or 3.1.1 grammar; CONNECT frames are decoded with
 * their own version byte. A decoding failure leaves no state behind (the shared parser is replaced).
 */
export function decodeFrame (frame: Buffer, version: 4 | 5 | 'connect'): DecodeResult {
  const key = version === 'connect' ? 'connect' : version === 5 ? 'v5' : 'v4'
  const parser = parsers[key]
  lastPacket = undefined
  lastError = undefined
  let left: number
  try {
    left = parser.parse(frame)
  } catch (err) {
    lastError = err instanceof Error ? err : new Error('decoder failure')
    left = -1
  }
  const packet = lastPacket
  const error = lastError
  lastPacket = undefined
  lastError = undefined
  if (error !== undefined || packet === undefined || left !== 0) {
    parsers[key] = newParser(key === 'v5' ? 5 : 4)
    return { ok: false, error: error?.message ?? 'incomplete packet' }
  }
  // mqtt-packet reports a Packet Identifier cut off by the Remaining Length as -1 instead of failing: for every
  // packet type that carries one (MQTT 5 §2.2.1) that is a malformed packet.
  const messageId = (packet as { messageId?: unknown }).messageId
  if (typeof messageId === 'number' && messageId < 0) {
    return { ok: false, error: 'packet identifier cut off' }
  }
  return { ok: true, packet }
}

/** Encodes a packet for a client of the given protocol version. Throws on an invalid packet (a bug). */
export function encodePacket (packet: Packet, version: 4 | 5): Buffer {
  return generate(packet, { protocolVersion: version })
}

/**
 * Whether a PUBLISH frame's topic name (16-bit length prefix, MQTT 5 §3.3.2.1) is well-formed UTF-8, checked on
 * the raw bytes since the decoders substitute U+FFFD [MQTT-1.5.3-1]. A topic running past the frame counts as
 * well-formed here: the decoder refuses that frame as malformed.
 */
export function publishTopicIsUtf8 (frame: Buffer, headerBytes: number): boolean {
  if (frame.length < headerBytes + 2) return true
  const start = headerBytes + 2
  const end = start + ((frame[headerBytes] << 8) | frame[headerBytes + 1])
  if (end > frame.length) return true
  // ASCII bytes are whole characters: only from the first byte ≥ 0x80 on is there anything for the decoder to
  // check (most topics are ASCII, and then no view of the frame is made at all).
  for (let i = start; i < end; i++) if (frame[i] >= 0x80) return isUtf8(frame.subarray(i, end))
  return true
}

/** Offset of the Packet Identifier in an encoded PUBLISH with QoS > 0 (right after the topic name). */
export function publishPacketIdOffset (encoded: Buffer): number {
  let i = 1
  while ((encoded[i] & 0x80) !== 0) i++
  const headerBytes = i + 1
  return headerBytes + 2 + encoded.readUInt16BE(headerBytes)
}

/** The fields of a decoded PUBLISH (MQTT 5 §3.3), whichever decoder produced them. */
export interface PublishFields {
  readonly topic: string
  /** A view of the frame: copy it before the frame's chunk is reused. */
  readonly payload: Buffer
  readonly qos: 0 | 1 | 2
  readonly dup: boolean
  readonly retain: boolean
  /** Packet Identifier (0 for QoS 0). */
  readonly messageId: number
  readonly properties: IPublishPacket['properties'] | undefined
}

/**
 * Decodes the common PUBLISH shapes without the general decoder: 3.1.1 always, MQTT 5 when the Property Length
 * is zero. Returns undefined for anything else (MQTT 5 properties, QoS 3, a topic or Packet Identifier running
 * past the frame) — the caller then uses {@link decodeFrame}, which owns the complete grammar and its errors.
 * The fields read are those of MQTT 5 §3.3.1 (fixed header) and §3.3.2 (variable header).
 */
export function decodePublishFast (frame: Buffer, headerBytes: number, version: 4 | 5): PublishFields | undefined {
  const b0 = frame[0]
  const bits = (b0 >> 1) & 3
  // [MQTT-3.3.1-4] both QoS bits set is malformed: left to the general decoder, which reports it.
  if (bits === 3) return undefined
  const qos = bits as 0 | 1 | 2
  const end = frame.length
  let i = headerBytes
  if (i + 2 > end) return undefined
  const topicEnd = i + 2 + ((frame[i] << 8) | frame[i + 1])
  if (topicEnd > end) return undefined
  const topic = frame.toString('utf8', i + 2, topicEnd)
  i = topicEnd
  let messageId = 0
  if (qos > 0) {
    if (i + 2 > end) return undefined
    messageId = (frame[i] << 8) | frame[i + 1]
    i += 2
  }
  if (version === 5) {
    // Property Length (MQTT 5 §3.3.2.3.1): only the one-byte zero is handled here.
    if (i >= end || frame[i] !== 0) return undefined
    i++
  }
  return { topic, payload: frame.subarray(i, end), qos, dup: (b0 & 0x08) !== 0, retain: (b0 & 0x01) !== 0, messageId, properties: undefined }
}

/**
 * The Packet Identifier of a PUBACK in its common shapes: 3.1.1's two bytes, or MQTT 5 with no Reason Code or
 * Success and no properties (MQTT 5 §3.4.2.1 lets both be omitted). Anything else returns -1 and goes to
 * {@link decodeFrame}.
 */
export function decodePubackFast (frame: Buffer): number {
  // Fixed header 0x40 [MQTT-3.4.1] (reserved flags 0) and Remaining Length 2, or 3 with Reason Code 0x00.
  if (frame[0] !== 0x40) return -1
  if (frame.length === 4 && frame[1] === 2) return (frame[2] << 8) | frame[3]
  if (frame.length === 5 && frame[1] === 3 && frame[4] === 0) return (frame[2] << 8) | frame[3]
  return -1
}

/** PUBACK with Reason Code Success and no properties: the same four bytes in 3.1.1 and 5 (MQTT 5 §3.4.2.1). */
export function encodePubackSuccess (messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b[0] = 0x40
  b[1] = 0x02
  b[2] = messageId >> 8
  b[3] = messageId & 0xff
  return b
}

/**
 * Encodes a PUBLISH without properties (3.1.1, or MQTT 5 with Property Length 0): fixed header, topic, Packet
 * Identifier for QoS > 0, then the payload — one allocation and two copies, where the general encoder builds a
 * packet object and walks every optional field.
 */
export function encodePlainPublish (topic: Buffer, payload: Buffer, qos: number, retain: boolean, dup: boolean, messageId: number, version: 4 | 5): Buffer {
  const remaining = 2 + topic.length + (qos > 0 ? 2 : 0) + (version === 5 ? 1 : 0) + payload.length
  const lenBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4
  const out = Buffer.allocUnsafe(1 + lenBytes + remaining)
  out[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0)
  // Remaining Length as a Variable Byte Integer (MQTT 5 §1.5.5).
  let i = 1
  let x = remaining
  do {
    let byte = x % 128
    x = Math.floor(x / 128)
    if (x > 0) byte |= 0x80
    out[i++] = byte
  } while (x > 0)
  out[i++] = topic.length >> 8
  out[i++] = topic.length & 0xff
  i += topic.copy(out, i)
  if (qos > 0) {
    out[i++] = messageId >> 8
    out[i++] = messageId & 0xff
  }
  if (version === 5) out[i++] = 0
  payload.copy(out, i)
  return out
}
