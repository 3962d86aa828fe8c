/**
 * Interoperability with the Mosquitto command-line clients (libmosquitto, OpenSSL) over mTLS, MQTT 3.1.1
 * and 5.0. The gateway listens on 127.0.0.1:0; Mosquitto's own broker is never used.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cleanupPki, createPki, Inbox, startGateway, waitUntil } from './gateway-helpers.ts'
import type { TestGateway, TestPki } from './gateway-helpers.ts'

const run = promisify(execFile)
let pki: TestPki
before(() => { pki = createPki(['mosq-pub', 'mosq-sub', 'dev-a', 'unregistered']) })
after(() => { cleanupPki(pki) })

function tlsArgs (name: string): string[] {
  return ['--cafile', join(pki.dir, 'ca.pem'), '--cert', join(pki.dir, `client-${name}.pem`), '--key', join(pki.dir, `client-${name}.key`)]
}

function subscribe (h: TestGateway, version: string, topic: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(h.port), ...tlsArgs('mosq-sub'), '-V', version,
      '-i', 'mosq-sub', '-t', topic, '-q', '1', '-C', '1', '-W', '10', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    p.on('close', (code) => { code === 0 ? resolve(out.trim()) : reject(new Error(`mosquitto_sub exited ${code}: ${err}`)) })
  })
}

describe('Mosquitto CLI clients', () => {
  for (const version of ['mqttv311', 'mqttv5']) {
    test(`mosquitto_sub and mosquitto_pub (${version}) exchange a QoS 1 message over mTLS`, async (t) => {
      const h = await startGateway(t, pki)
      const received = subscribe(h, version, 'mosq/+/temp')
      await waitUntil(() => (h.gw.sessions.get('mosq-sub')?.subscriptionFilters.length ?? 0) === 1, 5000)
      await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(h.port), ...tlsArgs('mosq-pub'), '-V', version,
        '-i', 'mosq-pub', '-t', 'mosq/1/temp', '-m', '21.5', '-q', '1'])
      assert.equal(await received, 'mosq/1/temp 21.5')
    })
  }

  test('mosquitto_pub retained message reaches an MQTT.js subscriber with RETAIN set', async (t) => {
    const h = await startGateway(t, pki)
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(h.port), ...tlsArgs('mosq-pub'), '-V', 'mqttv5',
      '-i', 'mosq-pub', '-t', 'mosq/state', '-m', 'on', '-q', '1', '-r', '-D', 'publish', 'user-property', 'src', 'cli'])
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('mosq/#', { qos: 1 })
    const m = await inbox.waitFor('mosq/state')
    assert.equal(m.payload, 'on')
    assert.equal(m.packet.retain, true)
    assert.deepEqual({ ...(m.packet.properties?.userProperties as object) }, { src: 'cli' })
  })

  test('mosquitto_pub with a certificate that is not registered is refused (Not authorized) and publishes nothing', async (t) => {
    const h = await startGateway(t, pki, { registerAll: false })
    h.policy.register(pki.client('dev-a'), 'dev-a')
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('#', { qos: 1 })
    await assert.rejects(run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(h.port), ...tlsArgs('unregistered'), '-V', 'mqttv311',
      '-i', 'unregistered', '-t', 'mosq/x', '-m', 'x', '-q', '1']), /not authori[sz]ed|refused/i)
    await c.publishAsync('sentinel', 's', { qos: 1 })
    await inbox.waitFor('sentinel')
    assert.equal(inbox.on('mosq/x').length, 0)
  })
})
