/**
 * The gateway bench's load generator, a child process of bench/gateway.ts (so its CPU is not the broker's). It
 * holds one TLS context per device and runs what the orchestrator asks, against whichever broker port it is
 * given: connection bursts, fan-in publishers and one subscriber, a fixed-rate latency run, idle connections.
 * Every loop is bounded in count and in time.
 */
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { SecureContext } from 'node:tls'
import { absNowMs, serve } from './ipc.ts'
import { connectClient, PublishTemplate } from './mqtt-raw.ts'
import type { RawClient } from './mqtt-raw.ts'
import { telemetryPayload } from './telemetry.ts'

/** The device file the orchestrator writes. */
export interface DeviceFile {
  readonly caPem: string
  readonly devices: ReadonlyArray<{ readonly name: string, readonly topic: string, readonly cert: string, readonly key: string }>
  readonly observer: { readonly name: string, readonly cert: string, readonly key: string }
}

export interface ConnectResult {
  readonly attempted: number
  readonly connected: number
  readonly elapsedMs: number
  /** Failure reasons and how often. */
  readonly failures: Record<string, number>
  /** Negotiated protocol, cipher and key exchange group of the first connection. */
  readonly tls: string | undefined
  readonly loadgenCpuMs: number
}

export interface FanInResult {
  readonly publishers: number
  readonly sent: number
  readonly received: number
  readonly elapsedMs: number
  readonly loadgenCpuMs: number
  readonly stalled: boolean
  /** Sequence number of the first message never delivered (−1 if none): tells a stuck tail from scattered loss. */
  readonly firstMissing: number
}

export interface LatencyResult {
  readonly sent: number
  readonly received: number
  readonly achievedPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** Commands the load generator serves. */
export type LoadgenApi = {
  setup: { req: { devicesFile: string }, res: { devices: number, contextsMs: number } }
  connectSequential: { req: { port: number, from: number, count: number, timeLimitMs: number }, res: ConnectResult }
  connectParallel: { req: { port: number, from: number, count: number, batch: number, timeLimitMs: number, x25519Only?: boolean }, res: ConnectResult }
  /** `json`: publishers send the 1 KB JSON telemetry document (telemetry.ts) instead of 32 binary bytes. */
  openFanIn: { req: { port: number, from: number, count: number, concurrency: number, timeLimitMs: number, json?: boolean }, res: ConnectResult & { subscribed: number[] } }
  fanIn: { req: { qos: 0 | 1, durationMs: number, maxMessages: number, window: number }, res: FanInResult }
  latency: { req: { qos: 0 | 1, ratePerSec: number, durationMs: number }, res: LatencyResult }
  closeFanIn: { req: Record<string, never>, res: { closed: number } }
  openIdle: { req: { port: number, from: number, count: number, concurrency: number, timeLimitMs: number }, res: ConnectResult }
  closeTimes: { req: { devices: number[], waitMs: number }, res: { closedAtMs: Array<number | null>, idleClosed: number, idleOpen: number } }
  closeIdle: { req: Record<string, never>, res: { closed: number } }
}

const KEEPALIVE_SEC = 1200
const CONNECT_TIMEOUT_MS = 15_000
const PAYLOAD_BYTES = 32

let file: DeviceFile | undefined
let contexts: SecureContext[] = []
let observerContext: SecureContext | undefined
let fan: { pubs: Array<{ client: RawClient, tpl: [PublishTemplate, PublishTemplate] }>, sub: RawClient } | undefined
const idle = new Map<number, RawClient>()

const cpuMs = (since: NodeJS.CpuUsage): number => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000 }
const sleep = (ms: number): Promise<void> => new Promise(resolve => { setTimeout(resolve, ms) })

function devices (): DeviceFile['devices'] {
  if (file === undefined) throw new Error('setup first')
  return file.devices
}

function connectDevice (port: number, i: number, secureContext: SecureContext = contexts[i]): Promise<RawClient> {
  const d = devices()[i]
  if (d === undefined) return Promise.reject(new Error(`no device ${i}`))
  return connectClient({ port, clientId: d.name, secureContext, keepAliveSec: KEEPALIVE_SEC, timeoutMs: CONNECT_TIMEOUT_MS })
}

function tlsInfo (c: RawClient): string {
  const k = c.socket.getEphemeralKeyInfo()
  const group = typeof k === 'object' && k !== null && 'name' in k ? String(k.name) : '?'
  return `${c.socket.getProtocol() ?? '?'} ${c.socket.getCipher().name} ${group}`
}

/** Connects devices from..from+count with at most `concurrency` handshakes in flight; calls `keep` for each. */
async function pool (port: number, from: number, count: number, concurrency: number, timeLimitMs: number,
  keep: (i: number, c: RawClient) => void): Promise<ConnectResult> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const failures: Record<string, number> = {}
  let next = from
  let connected = 0
  let tls: string | undefined
  const worker = async (): Promise<void> => {
    while (next < from + count && performance.now() - t0 < timeLimitMs) {
      const i = next++
      try {
        const c = await connectDevice(port, i)
        tls ??= tlsInfo(c)
        connected++
        keep(i, c)
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err)
        failures[why] = (failures[why] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker))
  return { attempted: next - from, connected, elapsedMs: performance.now() - t0, failures, tls, loadgenCpuMs: cpuMs(cpu0) }
}

function percentile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

serve<LoadgenApi>({
  async setup ({ devicesFile }) {
    const t0 = performance.now()
    file = JSON.parse(readFileSync(devicesFile, 'utf8')) as DeviceFile
    const ca = file.caPem
    contexts = file.devices.map(d => createSecureContext({ key: d.key, cert: d.cert, ca, minVersion: 'TLSv1.2' }))
    observerContext = createSecureContext({ key: file.observer.key, cert: file.observer.cert, ca, minVersion: 'TLSv1.2' })
    return { devices: contexts.length, contextsMs: performance.now() - t0 }
  },

  async connectSequential ({ port, from, count, timeLimitMs }) {
    return pool(port, from, count, 1, timeLimitMs, (_i, c) => { c.disconnect() })
  },

  async connectParallel ({ port, from, count, batch, timeLimitMs, x25519Only }) {
    // Like-for-like key exchange: Node 24's OpenSSL offers the hybrid X25519MLKEM768 group first, which a server
    // on OpenSSL 3.5 (Thingward) accepts and an older one (Debian's Mosquitto) does not.
    const ctx = new Map<number, SecureContext>()
    if (x25519Only === true) {
      const f = file as DeviceFile
      for (let i = from; i < Math.min(from + count, f.devices.length); i++) {
        ctx.set(i, createSecureContext({ key: f.devices[i].key, cert: f.devices[i].cert, ca: f.caPem, minVersion: 'TLSv1.2', ecdhCurve: 'X25519' }))
      }
    }
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const failures: Record<string, number> = {}
    let connected = 0
    let attempted = 0
    let tls: string | undefined
    for (let start = from; start < from + count && performance.now() - t0 < timeLimitMs; start += batch) {
      const n = Math.min(batch, from + count - start)
      attempted += n
      const settled = await Promise.allSettled(Array.from({ length: n }, (_, k) => connectDevice(port, start + k, ctx.get(start + k))))
      for (const s of settled) {
        if (s.status === 'fulfilled') { connected++; tls ??= tlsInfo(s.value); s.value.disconnect() } else {
          const why = s.reason instanceof Error ? s.reason.message : String(s.reason)
          failures[why] = (failures[why] ?? 0) + 1
        }
      }
    }
    return { attempted, connected, elapsedMs: performance.now() - t0, failures, tls, loadgenCpuMs: cpuMs(cpu0) }
  },

  async openFanIn ({ port, from, count, concurrency, timeLimitMs, json }) {
    if (file === undefined || observerContext === undefined) throw new Error('setup first')
    const sub = await connectClient({ port, clientId: file.observer.name, secureContext: observerContext, keepAliveSec: KEEPALIVE_SEC, timeoutMs: CONNECT_TIMEOUT_MS })
    const subscribed = await sub.subscribe('building/#', 1, 10_000)
    const pubs: NonNullable<typeof fan>['pubs'] = []
    const r = await pool(port, from, count, concurrency, timeLimitMs, (i, client) => {
      const topic = devices()[i].topic
      const payload = json === true ? telemetryPayload() : PAYLOAD_BYTES
      pubs.push({ client, tpl: [new PublishTemplate(topic, payload, 0), new PublishTemplate(topic, payload, 1)] })
    })
    fan = { pubs, sub }
    return { ...r, subscribed }
  },

  /**
   * Closed loop: at most `window` messages published but not yet delivered to the subscriber, spread round-robin
   * over the publishers, until `durationMs` or `maxMessages`; then waits for the rest (up to 3 s). The window
   * keeps both brokers below their queue limits (1,000 per session), so the figure is delivered throughput.
   */
  async fanIn ({ qos, durationMs, maxMessages, window }) {
    if (fan === undefined) throw new Error('openFanIn first')
    const { sub } = fan
    const pubs = fan.pubs.filter(p => !p.client.closed)
    if (pubs.length === 0 || sub.closed) throw new Error('no open publishers or subscriber')
    const cpu0 = process.cpuUsage()
    let sent = 0
    let received = 0
    let rr = 0
    let stop = false
    const seen = new Uint8Array(maxMessages)
    const t0 = performance.now()
    let last = t0
    const pump = (): void => {
      while (!stop && sent - received < window && sent < maxMessages) {
        const p = pubs[rr]
        rr = rr + 1 === pubs.length ? 0 : rr + 1
        p.client.write(p.tpl[qos].frame(qos === 1 ? p.client.nextPacketId() : 0, performance.now(), sent))
        sent++
      }
    }
    sub.onPublish = (_sentAt, seq) => { received++; if (seq < seen.length) seen[seq] = 1; last = performance.now(); pump() }
    pump()
    let stalled = false
    while (true) {
      await sleep(20)
      const now = performance.now()
      if (!stop && (now - t0 >= durationMs || sent >= maxMessages)) stop = true
      if (now - last > 2000) { stalled = !stop; break }
      if (stop && received >= sent) break
      if (stop && now - t0 > durationMs + 3000) break
    }
    stop = true
    sub.onPublish = undefined
    const firstMissing = seen.subarray(0, sent).indexOf(0)
    return { publishers: pubs.length, sent, received, elapsedMs: last - t0, loadgenCpuMs: cpuMs(cpu0), stalled, firstMissing }
  },

  /** Open loop at a fixed rate, round-robin over the publishers; latency = delivery time − send time (one clock). */
  async latency ({ qos, ratePerSec, durationMs }) {
    if (fan === undefined) throw new Error('openFanIn first')
    const { sub } = fan
    const pubs = fan.pubs.filter(p => !p.client.closed)
    if (pubs.length === 0) throw new Error('no open publishers')
    const total = Math.floor(ratePerSec * durationMs / 1000)
    const lat = new Float64Array(total)
    let received = 0
    let sent = 0
    let rr = 0
    sub.onPublish = (sentAt) => { if (received < total) lat[received++] = performance.now() - sentAt }
    const t0 = performance.now()
    while (sent < total && performance.now() - t0 < durationMs + 2000) {
      const due = Math.min(total, Math.floor((performance.now() - t0) * ratePerSec / 1000))
      while (sent < due) {
        const p = pubs[rr]
        rr = rr + 1 === pubs.length ? 0 : rr + 1
        p.client.write(p.tpl[qos].frame(qos === 1 ? p.client.nextPacketId() : 0, performance.now(), sent))
        sent++
      }
      await sleep(1)
    }
    const sendMs = performance.now() - t0
    for (let k = 0; k < 300 && received < sent; k++) await sleep(10)
    sub.onPublish = undefined
    const sorted = lat.slice(0, received).sort()
    return {
      sent, received, achievedPerSec: sent / (sendMs / 1000),
      p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.length > 0 ? sorted[sorted.length - 1] : Number.NaN,
    }
  },

  async closeFanIn () {
    if (fan === undefined) return { closed: 0 }
    const all = [fan.sub, ...fan.pubs.map(p => p.client)]
    for (const c of all) c.disconnect()
    fan = undefined
    for (let k = 0; k < 200 && all.some(c => !c.closed); k++) await sleep(10)
    for (const c of all) c.destroy()
    return { closed: all.length }
  },

  async openIdle ({ port, from, count, concurrency, timeLimitMs }) {
    return pool(port, from, count, concurrency, timeLimitMs, (i, c) => { idle.set(i, c) })
  },

  async closeTimes ({ devices: which, waitMs }) {
    const t0 = performance.now()
    const done = (): boolean => which.every(i => idle.get(i)?.closed !== false)
    while (!done() && performance.now() - t0 < waitMs) await sleep(5)
    let idleClosed = 0
    for (const c of idle.values()) if (c.closed) idleClosed++
    return { closedAtMs: which.map(i => idle.get(i)?.closedAtMs ?? null), idleClosed, idleOpen: idle.size - idleClosed }
  },

  async closeIdle () {
    const all = [...idle.values()]
    idle.clear()
    for (const c of all) c.disconnect()
    const t0 = absNowMs()
    while (all.some(c => !c.closed) && absNowMs() - t0 < 5000) await sleep(20)
    for (const c of all) c.destroy()
    return { closed: all.length }
  },
})
