/**
 * MQTT framing on top of mqtt-packet. `FrameReader` cuts the byte stream into whole control packets itself,
 * reading the fixed header and the Remaining Length varint (MQTT 3.1.1 §2.2.3, MQTT 5 §1.5.5) so that a packet
 * larger than the configured maximum is refused *before* its body is buffered. Complete frames are then decoded
 * by one shared mqtt-packet parser per protocol version (parsing is synchronous and a frame is always complete,
 * so no parser state is kept per connection).
 */
import { generate, parser as createParser } from 'mqtt-packet'
import type { Packet, Parser } from 'mqtt-packet'

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
  return { ok: true, packet }
}

/** Encodes a packet for a client of the given protocol version. Throws on an invalid packet (a bug). */
export function encodePacket (packet: Packet, version: 4 | 5): Buffer {
  return generate(packet, { protocolVersion: version })
}

/** Reads the 16-bit big-endian length prefix of the topic name in a PUBLISH frame (MQTT 5 §3.3.2.1). */
export function publishTopicSpan (frame: Buffer, headerBytes: number): [start: number, end: number] | undefined {
  if (frame.length < headerBytes + 2) return undefined
  const n = frame.readUInt16BE(headerBytes)
  const start = headerBytes + 2
  if (start + n > frame.length) return undefined
  return [start, start + n]
}

/** Offset of the Packet Identifier in an encoded PUBLISH with QoS > 0 (right after the topic name). */
export function publishPacketIdOffset (encoded: Buffer): number {
  let i = 1
  while ((encoded[i] & 0x80) !== 0) i++
  const headerBytes = i + 1
  return headerBytes + 2 + encoded.readUInt16BE(headerBytes)
}
