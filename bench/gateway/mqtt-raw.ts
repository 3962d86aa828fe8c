/**
 * A minimal MQTT 3.1.1 client over mutual TLS for load generation: CONNECT/CONNACK, SUBSCRIBE, PUBLISH with
 * pre-encoded topics, PUBACK, DISCONNECT. Frames are parsed by hand so the load generator spends its CPU on TLS,
 * not on a general-purpose client library, and so the broker, not the client, is what is measured.
 */
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { SecureContext, TLSSocket } from 'node:tls'
import { generate } from 'mqtt-packet'
import { mqttFrames } from './frames.ts'
import { absNowMs } from './ipc.ts'
import { readTrace, TELEMETRY_PAYLOAD_BYTES, TRACE_AT, writeTrace } from './telemetry.ts'

const DISCONNECT = Buffer.from([0xe0, 0x00])

/** Encodes an MQTT Remaining Length (MQTT 3.1.1 §2.2.3). */
function remainingLength (n: number): number[] {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return out
}

/**
 * A PUBLISH frame template for one topic, payload and QoS: copy it, then set the packet id and the trace. The
 * payload is either `n` binary bytes (send time and sequence number in the first 12) or the 1 KB JSON telemetry
 * document of telemetry.ts (the same two in its `trace` string).
 */
export class PublishTemplate {
  readonly #frame: Buffer
  readonly #json: boolean
  /** Offset of the packet identifier (QoS 1), or -1. */
  readonly idOffset: number
  readonly payloadOffset: number

  constructor (topic: string, payload: number | Buffer, qos: 0 | 1) {
    const t = Buffer.from(topic)
    const payloadBytes = typeof payload === 'number' ? payload : payload.length
    this.#json = typeof payload !== 'number'
    const rl = 2 + t.length + (qos === 1 ? 2 : 0) + payloadBytes
    const header = [0x30 | (qos << 1), ...remainingLength(rl)]
    this.#frame = Buffer.alloc(header.length + rl)
    Buffer.from(header).copy(this.#frame, 0)
    this.#frame.writeUInt16BE(t.length, header.length)
    t.copy(this.#frame, header.length + 2)
    this.idOffset = qos === 1 ? header.length + 2 + t.length : -1
    this.payloadOffset = header.length + 2 + t.length + (qos === 1 ? 2 : 0)
    if (typeof payload !== 'number') payload.copy(this.#frame, this.payloadOffset)
  }

  /** A fresh frame with `messageId` (QoS 1) and the send time (ms, float64) and a sequence number in the payload. */
  frame (messageId: number, sentAtMs: number, seq: number): Buffer {
    const b = Buffer.allocUnsafe(this.#frame.length)
    this.#frame.copy(b)
    if (this.idOffset >= 0) b.writeUInt16BE(messageId, this.idOffset)
    if (this.#json) writeTrace(b, this.payloadOffset + TRACE_AT, sentAtMs, seq)
    else {
      b.writeDoubleLE(sentAtMs, this.payloadOffset)
      b.writeUInt32LE(seq, this.payloadOffset + 8)
    }
    return b
  }
}

/** What a subscriber is told about each PUBLISH it receives. */
export type PublishHandler = (sentAtMs: number, seq: number, qos: number) => void

export interface ConnectOptions {
  readonly port: number
  readonly clientId: string
  readonly secureContext: SecureContext
  readonly keepAliveSec: number
  readonly timeoutMs: number
}

/** One connected client. */
export class RawClient {
  readonly socket: TLSSocket
  /** Wall-clock time the connection was seen to end (server FIN or close), if it did. */
  closedAtMs: number | undefined = undefined
  onPublish: PublishHandler | undefined = undefined
  onSuback: ((granted: number[]) => void) | undefined = undefined
  #nextId = 1
  #acks: number[] = []
  #ackScheduled = false

  constructor (socket: TLSSocket) {
    this.socket = socket
    const ended = (): void => { this.closedAtMs ??= absNowMs() }
    socket.on('end', ended)
    socket.on('close', ended)
    socket.on('error', () => {})
  }

  get closed (): boolean { return this.closedAtMs !== undefined }

  nextPacketId (): number {
    const id = this.#nextId
    this.#nextId = id === 0xffff ? 1 : id + 1
    return id
  }

  write (b: Buffer): void { if (!this.closed) this.socket.write(b) }

  subscribe (filter: string, qos: 0 | 1, timeoutMs: number): Promise<number[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SUBACK')), timeoutMs)
      this.onSuback = (g) => { clearTimeout(timer); resolve(g) }
      this.write(generate({ cmd: 'subscribe', messageId: this.nextPacketId(), subscriptions: [{ topic: filter, qos }] }))
    })
  }

  /** Sends DISCONNECT and half-closes. */
  disconnect (): void {
    if (this.closed) return
    this.socket.end(DISCONNECT)
    setTimeout(() => { this.socket.destroy() }, 2000).unref()
  }

  destroy (): void { this.socket.destroy() }

  /** Parses whole frames; PUBLISH payloads carry the send time (see PublishTemplate). */
  readonly onData = mqttFrames((b, start, body, len) => { this.#frame(b, start, body, len) })

  #frame (b: Buffer, start: number, body: number, len: number): void {
    const type = b[start] >> 4
    if (type === 3) {
      const qos = (b[start] >> 1) & 3
      const topicLen = b.readUInt16BE(body)
      let p = body + 2 + topicLen
      if (qos > 0) {
        this.#acks.push(b.readUInt16BE(p))
        p += 2
        if (!this.#ackScheduled) { this.#ackScheduled = true; queueMicrotask(() => { this.#flushAcks() }) }
      }
      const end = body + len
      if (this.onPublish === undefined) return
      if (end - p === TELEMETRY_PAYLOAD_BYTES && b[p] === 0x7b) {
        const t = readTrace(b, p + TRACE_AT)
        this.onPublish(t.sentAtMs, t.seq, qos)
      } else if (end - p >= 12) this.onPublish(b.readDoubleLE(p), b.readUInt32LE(p + 8), qos)
    } else if (type === 9) {
      const granted: number[] = []
      for (let k = body + 2; k < body + len; k++) granted.push(b[k])
      this.onSuback?.(granted)
    }
  }

  /** PUBACKs of one read, written together. */
  #flushAcks (): void {
    this.#ackScheduled = false
    const ids = this.#acks
    this.#acks = []
    const out = Buffer.allocUnsafe(ids.length * 4)
    for (let k = 0; k < ids.length; k++) {
      out[k * 4] = 0x40
      out[k * 4 + 1] = 0x02
      out.writeUInt16BE(ids[k], k * 4 + 2)
    }
    this.write(out)
  }
}

/** Connects over mTLS (full handshake, no resumption), sends CONNECT, resolves on CONNACK 0. */
export function connectClient (o: ConnectOptions): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    let settled = false
    // Nagle off from the first byte (the TLS handshake's last flight and CONNECT must not wait for an ACK).
    const tcp = netConnect({ host: '127.0.0.1', port: o.port, noDelay: true })
    const socket = tlsConnect({ socket: tcp, secureContext: o.secureContext, servername: 'localhost' })
    tcp.once('error', (e: Error) => { socket.destroy(e) })
    const client = new RawClient(socket)
    const fail = (why: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      reject(new Error(why))
    }
    const timer = setTimeout(() => fail('timeout'), o.timeoutMs)
    socket.once('secureConnect', () => {
      socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: o.keepAliveSec, clientId: o.clientId }))
    })
    socket.once('error', (e: Error) => fail(`error: ${e.message}`))
    socket.once('close', () => fail('closed before CONNACK'))
    let head: Buffer | undefined
    const onConnack = (chunk: Buffer): void => {
      head = head === undefined ? chunk : Buffer.concat([head, chunk])
      if (head.length < 4) return
      socket.off('data', onConnack)
      if (head[0] !== 0x20) { fail(`unexpected packet type ${head[0] >> 4}`); return }
      if (head[3] !== 0) { fail(`CONNACK ${head[3]}`); return }
      settled = true
      clearTimeout(timer)
      socket.on('data', (c: Buffer) => { client.onData(c) })
      if (head.length > 4) client.onData(head.subarray(4))
      resolve(client)
    }
    socket.on('data', onConnack)
  })
}
