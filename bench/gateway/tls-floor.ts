/**
 * The floor under Thingward's figures: a bare Node mTLS server with exactly the gateway's TLS settings (server
 * chain, trusted CAs, client certificate required, TLS 1.2+, the same cipher list) and the least MQTT 3.1.1 that
 * the bench workload needs — CONNACK, SUBACK, PUBACK, and every PUBLISH forwarded as-is to the one subscriber.
 * No registry, no policy, no audit, no session state, no limits, no topic trie. What it costs per connection,
 * per message and per idle socket is what Node's TLS and socket I/O cost for the same packets on the wire; the
 * rest of Thingward's figure is the gateway's own work.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { STRONG_CIPHERS } from '../../src/gateway/index.ts'
import { mqttFrames } from './frames.ts'
import { serve } from './ipc.ts'

/** Commands the floor server serves. */
export type FloorApi = {
  /** `coalesce`: writes of one event-loop turn go out together per socket (cork, then uncork on setImmediate). */
  start: { req: { certFile: string, keyFile: string, caFile: string, coalesce: boolean }, res: { port: number } }
  gc: { req: Record<string, never>, res: { rssKb: number, heapUsedKb: number } }
}

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00])
const collect = (globalThis as { gc?: () => void }).gc
const sleep = (ms: number): Promise<void> => new Promise(resolve => { setTimeout(resolve, ms) })

let subscriber: TLSSocket | undefined
let nextId = 1
let coalesce = false
const corked: TLSSocket[] = []

/** Writes now, or (coalescing) corks the socket until the end of this event-loop turn: one TLS record, one syscall. */
function send (socket: TLSSocket, b: Buffer): void {
  if (coalesce && !socket.writableCorked) {
    socket.cork()
    if (corked.push(socket) === 1) {
      setImmediate(() => {
        const all = corked.splice(0)
        for (const s of all) s.uncork()
      })
    }
  }
  socket.write(b)
}

/** Handles one complete frame from `socket`. */
function onFrame (socket: TLSSocket, b: Buffer, start: number, body: number, len: number): void {
  const type = b[start] >> 4
  if (type === 1) { send(socket, CONNACK); return }
  if (type === 14) { socket.end(); return }
  if (type === 8) {
    // SUBSCRIBE (the bench sends one filter): grant QoS 1; this socket receives every PUBLISH from now on.
    subscriber = socket
    send(socket, Buffer.from([0x90, 0x03, b[body], b[body + 1], 0x01]))
    return
  }
  if (type !== 3) return
  const qos = (b[start] >> 1) & 3
  const frame = Buffer.from(b.subarray(start, body + len))
  if (qos === 1) {
    const idAt = body - start + 2 + b.readUInt16BE(body)
    send(socket, Buffer.from([0x40, 0x02, frame[idAt], frame[idAt + 1]]))
    frame.writeUInt16BE(nextId, idAt)
    nextId = nextId === 0xffff ? 1 : nextId + 1
  }
  if (subscriber !== undefined) send(subscriber, frame)
}

function attach (socket: TLSSocket): void {
  socket.setNoDelay(true)
  socket.on('error', () => {})
  socket.on('close', () => { if (subscriber === socket) subscriber = undefined })
  socket.on('data', mqttFrames((b, start, body, len) => { onFrame(socket, b, start, body, len) }))
}

serve<FloorApi>({
  async start ({ certFile, keyFile, caFile, coalesce: c }) {
    coalesce = c
    const server = createServer({
      cert: readFileSync(certFile), key: readFileSync(keyFile), ca: [readFileSync(caFile)],
      requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3',
      ciphers: STRONG_CIPHERS, honorCipherOrder: true, handshakeTimeout: 5000,
    })
    server.on('secureConnection', attach)
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const a = server.address()
        resolve(typeof a === 'object' && a !== null ? a.port : 0)
      })
    })
    return { port }
  },

  async gc () {
    for (let i = 0; i < 3; i++) { collect?.(); await sleep(50) }
    const m = process.memoryUsage()
    return { rssKb: Math.round(m.rss / 1024), heapUsedKb: Math.round(m.heapUsed / 1024) }
  },
})
