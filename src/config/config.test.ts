import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from './index.ts'
import { AppError } from '../core/index.ts'

test('defaults are the embedded, loopback-only platform', () => {
  const c = loadConfig({})
  assert.equal(c.dataDir, './data')
  assert.deepEqual(c.http, { host: '127.0.0.1', port: 8443, tls: true, bodyLimitBytes: 1_048_576 })
  assert.deepEqual(c.mqtt, { host: '127.0.0.1', port: 8883 })
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
