/**
 * Interop with Eclipse Paho's Python client (Debian's python3-paho-mqtt, run by /usr/bin/python3): devices
 * provisioned with our CA connect over mutual TLS as MQTT 3.1.1 and 5.0 and meet the role policies — their own
 * topic is allowed, another device's topic is refused and delivered to nobody, wildcard subscriptions are refused,
 * a revoked certificate cannot connect and revoking a connected one disconnects it. The client is
 * test/paho/client.py; it reports each event as a JSON line.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startPlatform } from './helpers/platform.ts'
import { observer } from './helpers/devices.ts'
import type { DeviceBundle, TestPlatform } from './helpers/platform.ts'
import { barrier } from './gateway-helpers.ts'

/** Debian's interpreter, where python3-paho-mqtt installs (the `python3` on PATH may be another build). */
const PYTHON = process.env.THINGWARD_PAHO_PYTHON ?? '/usr/bin/python3'
const CLIENT = join(import.meta.dirname, 'paho', 'client.py')
const probe = spawnSync(PYTHON, ['-c', 'import paho.mqtt.client'], { encoding: 'utf8' })
const skip = probe.status === 0 ? false : `${PYTHON} cannot import paho.mqtt (apt-get install python3-paho-mqtt): ${(probe.stderr ?? probe.error?.message ?? '').trim().split('\n').pop() ?? ''}`


/** MQTT reason codes the assertions use (MQTT 5 §2.4; 3.1.1 §3.2.2.3 and §3.9.3). */
const SUCCESS = 0
const NOT_AUTHORIZED_V5 = 0x87
const ADMINISTRATIVE_ACTION = 0x98
const SUBACK_FAILURE_V311 = 0x80
const CONNACK_NOT_AUTHORIZED_V311 = 5

type Protocol = 'v311' | 'v5'

/** One JSON line from client.py. */
interface PahoEvent {
  readonly event: string
  readonly [key: string]: unknown
}

interface PahoStep {
  readonly op: 'subscribe' | 'publish' | 'expect' | 'waitDisconnect' | 'sleep'
  readonly topic?: string
  readonly payload?: string
  readonly qos?: 0 | 1
  readonly timeout?: number
  readonly seconds?: number
}

function parseEvent (line: string): PahoEvent | undefined {
  let v: unknown
  try { v = JSON.parse(line) } catch { return undefined }
  return typeof v === 'object' && v !== null && typeof (v as { event?: unknown }).event === 'string' ? v as PahoEvent : undefined
}

/** A running client.py: its events as they come, and the whole list once it exits. */
class PahoRun {
  readonly events: PahoEvent[] = []
  readonly done: Promise<PahoEvent[]>
  #waiters: Array<() => void> = []

  constructor (plan: Record<string, unknown>, timeoutMs = 30_000) {
    const child = spawn(PYTHON, [CLIENT, JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    createInterface({ input: child.stdout }).on('line', (line) => {
      const e = parseEvent(line)
      if (e === undefined) return
      this.events.push(e)
      const w = this.#waiters
      this.#waiters = []
      for (const f of w) f()
    })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    this.done = new Promise((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (status) => {
        clearTimeout(timer)
        if (status === 0 && this.events.some(e => e.event === 'done')) resolve(this.events)
        else reject(new Error(`client.py exited ${status}: ${stderr.trim()} events=${JSON.stringify(this.events)}`))
      })
    })
    this.done.catch(() => {})
  }

  /** Resolves with the first event matching `pred` (rejects if the client exits first). */
  async waitFor (pred: (e: PahoEvent) => boolean, timeoutMs = 15_000): Promise<PahoEvent> {
    const deadline = Date.now() + timeoutMs
    let exited = false
    this.done.then(() => { exited = true }, () => { exited = true })
    for (;;) {
      const hit = this.events.find(pred)
      if (hit !== undefined) return hit
      if (exited) throw new Error(`client.py ended without the expected event: ${JSON.stringify(this.events)}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for a client.py event: ${JSON.stringify(this.events)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50))
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
}

const of = (events: readonly PahoEvent[], name: string): PahoEvent[] => events.filter(e => e.event === name)

/** Writes a device's PEM files for client.py; removed when the test ends. */
function bundleFiles (d: DeviceBundle, t: { after: (fn: () => unknown) => void }): { ca: string, cert: string, key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tw-paho-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }
  writeFileSync(files.ca, d.ca)
  writeFileSync(files.cert, d.cert)
  writeFileSync(files.key, d.key, { mode: 0o600 })
  return files
}

function paho (p: TestPlatform, d: DeviceBundle, protocol: Protocol, steps: PahoStep[], t: { after: (fn: () => unknown) => void }): PahoRun {
  return new PahoRun({ port: p.mqttPort, ...bundleFiles(d, t), clientId: d.thingName, protocol, steps })
}


const own = (d: DeviceBundle, segment: string): string => `building/1/floor/1/${segment}/${d.thingName}`

test('paho-mqtt 3.1.1 and 5.0 over mTLS with our CA: own topic allowed; another device\'s topic refused and delivered to nobody', { skip }, async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  for (const protocol of ['v311', 'v5'] as const) {
    const me = await p.device('temperature-sensor', `temp-${protocol}-1`)
    const victim = await p.device('temperature-sensor', `temp-${protocol}-2`)
    const events = await paho(p, me, protocol, [
      { op: 'publish', topic: own(me, 'temperature'), payload: `21.5-${protocol}`, qos: 1 },
      { op: 'publish', topic: own(victim, 'temperature'), payload: 'spoof', qos: 1 },
      { op: 'sleep', seconds: 0.2 },
    ], t).done
    assert.deepEqual(of(events, 'connack').map(e => e.reasonCode), [SUCCESS], protocol)
    assert.equal(of(events, 'published').length, 2, protocol)
    const [mine, spoof] = of(events, 'published')
    assert.equal(mine.pubackReasonCode, SUCCESS, `${protocol}: own topic acknowledged`)
    assert.equal((await obs.inbox.waitFor(own(me, 'temperature'))).payload, `21.5-${protocol}`)
    if (protocol === 'v5') {
      // MQTT 5: PUBACK 0x87 Not authorized, and the connection stays up.
      assert.equal(spoof.pubackReasonCode, NOT_AUTHORIZED_V5)
      assert.equal(spoof.disconnected, false)
    } else {
      // MQTT 3.1.1 has no negative PUBACK: like AWS IoT, the gateway closes the connection.
      assert.equal(spoof.disconnected, true, 'v3.1.1: an unauthorized publish closes the connection')
      assert.notEqual(spoof.pubackReasonCode, SUCCESS)
      const done = of(events, 'done')[0]
      assert.equal(done.serverClosed, true)
    }
    await barrier(obs.client, obs.inbox)
    assert.deepEqual(obs.inbox.on(own(victim, 'temperature')), [], `${protocol}: the spoofed message reached nobody`)
  }
  assert.equal(p.gateway?.metrics.denials['publish:no-matching-statement'], 2)
})

test('paho-mqtt: wildcard subscriptions are refused (v5 0x87, v3.1.1 0x80); the light receives its own commands only', { skip }, async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  for (const protocol of ['v311', 'v5'] as const) {
    const l1 = await p.device('smart-light', `light-${protocol}-1`)
    const l2 = await p.device('smart-light', `light-${protocol}-2`)
    const cmd1 = `${own(l1, 'light')}/cmd`
    const cmd2 = `${own(l2, 'light')}/cmd`
    const run = paho(p, l1, protocol, [
      { op: 'subscribe', topic: 'building/#', qos: 1 },
      { op: 'subscribe', topic: 'building/1/floor/1/light/+/cmd', qos: 1 },
      { op: 'subscribe', topic: cmd1, qos: 1 },
      { op: 'expect', topic: cmd1, timeout: 10 },
    ], t)
    await run.waitFor(e => e.event === 'subscribed' && e.topic === cmd1)
    // The other light's command first: routed in order from one publisher, it would arrive before ours.
    await obs.client.publishAsync(cmd2, 'on-2', { qos: 1 })
    await obs.client.publishAsync(cmd1, 'on-1', { qos: 1 })
    const events = await run.done
    const refused = protocol === 'v5' ? NOT_AUTHORIZED_V5 : SUBACK_FAILURE_V311
    assert.deepEqual(of(events, 'subscribed').map(e => [e.topic, e.granted]), [
      ['building/#', [refused]],
      ['building/1/floor/1/light/+/cmd', [refused]],
      [cmd1, [1]],
    ], protocol)
    assert.equal(of(events, 'expected')[0]?.received, true, `${protocol}: own command delivered`)
    const done = of(events, 'done')[0]
    assert.deepEqual(done.messages, [{ topic: cmd1, payload: 'on-1', qos: 1 }], `${protocol}: nothing but its own command`)
    assert.equal(done.serverClosed, false, `${protocol}: a refused subscription does not close the connection`)
  }
})

test('paho-mqtt: a revoked certificate is refused (3.1.1 CONNACK 5, v5 0x87); revoking a connected device disconnects it (v5 0x98)', { skip }, async (t) => {
  const p = await startPlatform(t, { gateway: true })
  for (const protocol of ['v311', 'v5'] as const) {
    const d = await p.device('temperature-sensor', `temp-${protocol}-revoked`)
    await p.app.certificates.updateStatus({ actor: 'test' }, d.certificateId, 'REVOKED')
    const events = await paho(p, d, protocol, [{ op: 'publish', topic: own(d, 'temperature'), payload: 'x', qos: 1 }], t).done
    const rc = of(events, 'connack')[0]?.reasonCode
    // paho 1.x reports the 3.1.1 return code (5); paho 2.x maps it to the v5 reason code (0x87).
    assert.ok(protocol === 'v5' ? rc === NOT_AUTHORIZED_V5 : rc === CONNACK_NOT_AUTHORIZED_V311 || rc === NOT_AUTHORIZED_V5, `${protocol}: CONNACK ${String(rc)}`)
    assert.deepEqual(of(events, 'published'), [], 'nothing published after a refused CONNECT')
  }
  await p.gateway?.flushAudit()
  const refused = await p.app.audit.query({ action: 'mqtt.connect', outcome: 'denied' })
  assert.equal(refused.filter(e => e.reason === 'certificate-revoked').length, 2)

  // Live revocation: the session is closed at once with DISCONNECT 0x98 Administrative action.
  const live = await p.device('temperature-sensor', 'temp-live')
  const run = paho(p, live, 'v5', [{ op: 'waitDisconnect', timeout: 10 }], t)
  await run.waitFor(e => e.event === 'connack' && e.reasonCode === SUCCESS)
  await p.app.certificates.updateStatus({ actor: 'test' }, live.certificateId, 'REVOKED')
  const events = await run.done
  assert.deepEqual(of(events, 'server-disconnect').map(e => [e.received, e.reasonCode]), [[true, ADMINISTRATIVE_ACTION]])
  assert.equal(p.gateway?.sessions.get('temp-live')?.connected ?? false, false)
})
