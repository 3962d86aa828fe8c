import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from './index.ts'
import { AppError } from '../core/index.ts'

test('defaults are the embedded, loopback-only platform', () => {
  const c = loadConfig({})
  assert.equal(c.dataDir, './data')
  assert.deepEqual(c.http, { host: '127.0.0.1', port: 8443, tls: true, bodyLimitBytes: 1_048_576 })
  assert.deepEqual(c.mqtt, { host: '127.0.0.1', port: 8883, limits: {} })
  assert.equal(c.deviceHttps.port, undefined)
  assert.equal(c.region, 'local-1')
  assert.equal(c.tls.minVersion, 'TLSv1.2')
  assert.equal(c.devMode, false)
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.http))
})

test('environment overrides the file, and the file overrides defaults', () => {
  const c = loadConfig({ THINGWARD_HTTP_PORT: '9443' }, { http: { port: 7443, host: '127.0.0.2' }, region: 'eu-1' })
  assert.equal(c.http.port, 9443)
  assert.equal(c.http.host, '127.0.0.2')
  assert.equal(c.region, 'eu-1')
})

const refusals: Array<[string, Record<string, string>, unknown, RegExp]> = [
  ['a port out of range', { THINGWARD_HTTP_PORT: '70000' }, {}, /THINGWARD_HTTP_PORT.*port number/],
  ['a non-numeric port', { THINGWARD_MQTT_PORT: 'abc' }, {}, /THINGWARD_MQTT_PORT/],
  ['a bad device HTTPS port', { THINGWARD_DEVICE_HTTPS_PORT: '99999' }, {}, /THINGWARD_DEVICE_HTTPS_PORT/],
  ['TLS 1.1', { THINGWARD_TLS_MIN_VERSION: 'TLSv1.1' }, {}, /TLSv1.2 or TLSv1.3/],
  ['plaintext API on a public address', { THINGWARD_HTTP_TLS: 'false', THINGWARD_HTTP_HOST: '0.0.0.0' }, {}, /plaintext API is allowed only on a loopback/],
  ['a bad region', { THINGWARD_REGION: 'Bad Region' }, {}, /THINGWARD_REGION/],
  ['a bad account id', { THINGWARD_ACCOUNT_ID: '12' }, {}, /12 digits/],
  ['an unknown CA algorithm', { THINGWARD_CA_ALGORITHM: 'DSA' }, {}, /EC-P256, EC-P384, RSA-3072/],
  ['a master key in the file', {}, { masterKey: 'x' }, /must not be written in the config file/],
  ['a non-object file', {}, [], /must hold a JSON object/],
  ['an unknown gateway limit', {}, { mqtt: { limits: { publishRate: 10 } } }, /mqtt\.limits\.publishRate: is not a gateway limit \(known: maxPacketBytes/],
  ['a gateway limit out of range', { THINGWARD_MQTT_LIMITS: '{"maxClientIdBytes":8}' }, {}, /mqtt\.limits\.maxClientIdBytes: must be an integer from 23 to 65535/],
  ['a fractional gateway limit', {}, { mqtt: { limits: { publishesPerSecond: 2.5 } } }, /publishesPerSecond: must be an integer/],
  ['a gateway limit given as a string', {}, { mqtt: { limits: { receiveMaximum: '10' } } }, /receiveMaximum: must be an integer/],
  ['an unknown overflow policy', {}, { mqtt: { limits: { slowSubscriberPolicy: 'block' } } }, /slowSubscriberPolicy: must be drop or disconnect/],
  ['gateway limits that are not JSON', { THINGWARD_MQTT_LIMITS: 'publishesPerSecond=5' }, {}, /THINGWARD_MQTT_LIMITS: must be a JSON object/],
  ['gateway limits that are not an object', {}, { mqtt: { limits: [1] } }, /mqtt\.limits: must be an object/],
  ['a packet limit below the payload limit', {}, { mqtt: { limits: { maxPayloadBytes: 4096, maxPacketBytes: 2048 } } }, /maxPacketBytes: must be at least maxPayloadBytes/],
  ['a keep-alive floor above its ceiling', {}, { mqtt: { limits: { keepAliveMinSec: 600, keepAliveMaxSec: 60 } } }, /keepAliveMinSec: must not exceed keepAliveMaxSec/],
]
for (const [what, env, file, re] of refusals) {
  test(`refuses ${what} with a message naming the setting`, () => {
    assert.throws(() => loadConfig(env, file), (e: unknown) => e instanceof AppError && e.code === 'ERR_CONFIG_INVALID' && re.test(e.message))
  })
}

test('every bad value is reported at once', () => {
  assert.throws(() => loadConfig({ THINGWARD_HTTP_PORT: 'x', THINGWARD_REGION: '!', THINGWARD_TLS_MIN_VERSION: 'SSLv3' }), (e: unknown) => {
    assert.ok(e instanceof AppError)
    assert.equal(e.details.problems, 3)
    return true
  })
})

test('plaintext on loopback is allowed (for local development behind a TLS proxy)', () => {
  assert.equal(loadConfig({ THINGWARD_HTTP_TLS: 'false' }).http.tls, false)
})

test('the master key value is never part of an error message', () => {
  assert.throws(() => loadConfig({ THINGWARD_MASTER_KEY: 'super-secret-value', THINGWARD_HTTP_PORT: '-1' }), (e: unknown) => {
    assert.ok(e instanceof Error && !e.message.includes('super-secret-value'))
    return true
  })
})

test('gateway limits come from the file and THINGWARD_MQTT_LIMITS (whose keys win); the packet limit follows a larger payload limit', () => {
  const c = loadConfig({ THINGWARD_MQTT_LIMITS: '{"publishesPerSecond":500,"rateLimitPolicy":"disconnect"}' },
    { mqtt: { limits: { publishesPerSecond: 20, maxPayloadBytes: 262_144, maxSubscriptionsPerSession: 200 } } })
  assert.deepEqual(c.mqtt.limits, { publishesPerSecond: 500, rateLimitPolicy: 'disconnect', maxPayloadBytes: 262_144, maxPacketBytes: 262_144 + 2048, maxSubscriptionsPerSession: 200 })
  assert.ok(Object.isFrozen(c.mqtt.limits))
  // An explicit packet limit is kept.
  assert.equal(loadConfig({}, { mqtt: { limits: { maxPayloadBytes: 1024, maxPacketBytes: 4096 } } }).mqtt.limits.maxPacketBytes, 4096)
})

test('bad gateway limits are all reported at once, and none is half-applied', () => {
  assert.throws(() => loadConfig({ THINGWARD_MQTT_LIMITS: '{"maxTopicBytes":0,"nope":1}' }, { mqtt: { limits: { rateLimitPolicy: 'slow' } } }), (e: unknown) => {
    assert.ok(e instanceof AppError)
    assert.equal(e.details.problems, 3)
    return true
  })
})
