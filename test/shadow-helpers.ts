/**
 * Helpers for the shadow and data-plane tests: a device policy for its own shadow topics, provisioning and an
 * MQTT connection with real certificates, a JSON inbox, the iot-data SDK client against the platform, and an
 * ordering barrier through the shadow path.
 */
import { Agent } from 'node:https'
import { connect } from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { TestPlatform } from './helpers/platform.ts'

export const ARN = 'arn:aws:iot:local-1:000000000000'
const THING = '${iot:Connection.Thing.ThingName}'

/** A device may use its own shadows (classic and named) over MQTT: publish requests, subscribe to and receive answers. */
export const SHADOW_DEVICE_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/${THING}` },
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: `${ARN}:topic/$aws/things/${THING}/shadow/*` },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/$aws/things/${THING}/shadow/*` },
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: `${ARN}:topic/telemetry/${THING}` },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/telemetry/${THING}` },
  ],
})

/** A device's credentials. */
export interface Device { readonly thingName: string, readonly cert: string, readonly key: string, readonly certificateId: string }

/** Provisions a thing with a certificate and the shadow-device policy. */
export async function provisionDevice (p: TestPlatform, thingName: string, policy = SHADOW_DEVICE_POLICY): Promise<Device> {
  const caller = { actor: 'test' }
  const policyName = `p-${Buffer.from(policy).toString('base64url').slice(-24)}`
  if (await p.app.policies.getPolicy(policyName).then(() => false, () => true)) await p.app.policies.createPolicy(caller, policyName, policy)
  const [d] = await p.app.provisioning.provision(caller, { policyName, items: [{ thingName }] })
  return { thingName, cert: d.certificatePem, key: d.privateKeyPem ?? '', certificateId: d.certificateId }
}

/** Connects a device over mTLS (MQTT 5 unless told otherwise); rejects on a refusal. Ended when the test ends. */
export function connectDevice (p: TestPlatform, d: Device, t: { after: (fn: () => unknown) => void }, o: IClientOptions = {}): Promise<MqttClient> {
  const c = connect(`mqtts://127.0.0.1:${p.mqttPort}`, { key: d.key, cert: d.cert, ca: p.caPem, clientId: d.thingName, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...o })
  t.after(() => c.end(true))
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c))
    c.once('error', reject)
    c.once('close', () => reject(new Error('connection closed before CONNACK')))
  })
}

/** One received message with its payload parsed as JSON (undefined when it is not JSON). */
export interface JsonMessage { readonly topic: string, readonly json: Record<string, unknown>, readonly raw: Buffer }

/** Collects a client's messages; `next` waits (event-driven, with a safety deadline) for one that matches. */
export class JsonInbox {
  readonly messages: JsonMessage[] = []
  #waiters: Array<() => void> = []
  #taken = new Set<JsonMessage>()

  constructor (client: MqttClient) {
    client.on('message', (topic, payload) => {
      let json: Record<string, unknown> = {}
      try { json = JSON.parse(payload.toString()) as Record<string, unknown> } catch { json = {} }
      this.messages.push({ topic, json, raw: payload })
      const w = this.#waiters
      this.#waiters = []
      for (const f of w) f()
    })
  }

  /** The first not-yet-taken message on `topic` satisfying `pred`; marks it taken. */
  async next (topic: string, pred: (j: Record<string, unknown>) => boolean = () => true, timeoutMs = 5000): Promise<Record<string, unknown>> {
    return (await this.nextOf([topic], pred, timeoutMs)).json
  }

  /** The first not-yet-taken message on any of `topics` satisfying `pred`; marks it taken. */
  async nextOf (topics: readonly string[], pred: (j: Record<string, unknown>) => boolean = () => true, timeoutMs = 5000): Promise<JsonMessage> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.messages.find(x => topics.includes(x.topic) && !this.#taken.has(x) && pred(x.json))
      if (m !== undefined) { this.#taken.add(m); return m }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for a message on ${topics.join(' | ')}; got: ${this.messages.map(x => x.topic).join(', ')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  on (topic: string): JsonMessage[] { return this.messages.filter(m => m.topic === topic) }
}

/** Publishes a shadow request and waits for its answer (accepted or rejected) carrying the same clientToken. */
export async function shadowRequest (c: MqttClient, inbox: JsonInbox, prefix: string, op: 'get' | 'update' | 'delete', body: Record<string, unknown>): Promise<{ outcome: 'accepted' | 'rejected', doc: Record<string, unknown> }> {
  const clientToken = typeof body.clientToken === 'string' ? body.clientToken : `ct-${Math.random().toString(36).slice(2)}`
  await c.publishAsync(`${prefix}/${op}`, JSON.stringify({ ...body, clientToken }), { qos: 1 })
  const m = await inbox.nextOf([`${prefix}/${op}/accepted`, `${prefix}/${op}/rejected`], j => j.clientToken === clientToken)
  return { outcome: m.topic.endsWith('/accepted') ? 'accepted' : 'rejected', doc: m.json }
}

/** An iot-data client (the real AWS SDK) signed with the platform's admin key, trusting our CA. */
export function dataClient (p: TestPlatform, t: { after: (fn: () => unknown) => void }, creds = p.creds): IoTDataPlaneClient {
  const agent = new Agent({ ca: p.caPem, keepAlive: true })
  const client = new IoTDataPlaneClient({
    endpoint: p.endpoint, region: 'local-1', credentials: creds, maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
  })
  t.after(() => { client.destroy(); agent.destroy() })
  return client
}

export const json = (b: Uint8Array | undefined): Record<string, unknown> => JSON.parse(Buffer.from(b ?? new Uint8Array()).toString('utf8')) as Record<string, unknown>
