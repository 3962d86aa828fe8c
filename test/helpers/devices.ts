/** MQTT clients for devices provisioned by `startPlatform`: an observer that sees the building, and device connects. */
import { connect } from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { recordEarlyMessages, Inbox } from '../gateway-helpers.ts'
import type { DeviceBundle, TestPlatform } from './platform.ts'

interface After { after: (fn: () => unknown) => void }

export const TEST_ARN = 'arn:aws:iot:local-1:000000000000'

/** A principal that may subscribe to and receive everything under `building/` and `sentinel/` (for negative tests). */
export const OBSERVER_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${TEST_ARN}:client/observer` },
    { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${TEST_ARN}:topicfilter/building/*`, `${TEST_ARN}:topicfilter/sentinel/*`] },
    { Effect: 'Allow', Action: ['iot:Receive', 'iot:Publish'], Resource: [`${TEST_ARN}:topic/building/*`, `${TEST_ARN}:topic/sentinel/*`] },
  ],
})

/** Connects with the bundle's certificate; rejects on an error or a close before CONNACK (a TLS refusal is a close). */
export function connectDevice (p: TestPlatform, d: DeviceBundle, t: After, o: IClientOptions = {}): Promise<MqttClient> {
  const c = connect(`mqtts://127.0.0.1:${p.mqttPort}`, { key: d.key, cert: d.cert, ca: d.ca, clientId: d.thingName, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...o })
  recordEarlyMessages(c)
  t.after(() => c.end(true))
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c))
    c.once('error', reject)
    c.once('close', () => reject(new Error('connection closed before CONNACK')))
  })
}

/** Provisions the observer and connects it, subscribed to `building/#` and `sentinel/#`. */
export async function observer (p: TestPlatform, t: After): Promise<{ client: MqttClient, inbox: Inbox }> {
  await p.app.policies.createPolicy({ actor: 'test' }, 'observer', OBSERVER_POLICY)
  const [d] = await p.app.provisioning.provision({ actor: 'test' }, { policyName: 'observer', items: [{ thingName: 'observer' }] })
  const client = await connectDevice(p, { thingName: 'observer', certificateId: d.certificateId, certificateArn: d.certificateArn, cert: d.certificatePem, key: d.privateKeyPem ?? '', ca: p.caPem }, t)
  const inbox = new Inbox(client)
  await client.subscribeAsync(['building/#', 'sentinel/#'], { qos: 1 })
  return { client, inbox }
}
