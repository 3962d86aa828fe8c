/**
 * The registry's two paths: a payload every matching accelerator accepts skips JSON.parse and Ajv; anything else
 * gets Ajv's verdict, with Ajv's exact schemaPath, instancePath and message, whether or not the schema has an
 * accelerator (one with `oneOf` has none) and whatever the accelerator said.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ValidateFunction } from 'ajv'
import { PAYLOAD_ACCEPTED, PayloadSchemaRegistry } from './payload-schemas.ts'

const TELEMETRY = {
  type: 'object',
  properties: { t: { type: 'number', minimum: -50, maximum: 100 }, unit: { enum: ['C', 'F'] }, samples: { type: 'array', items: { type: 'integer' } } },
  required: ['t'],
  additionalProperties: false,
}
/** Outside the accelerator's subset: Ajv only. */
const UNIT_RULE = { oneOf: [{ required: ['unit'] }, { required: ['samples'] }] }

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8')

function twoSchemas (): PayloadSchemaRegistry {
  const r = new PayloadSchemaRegistry()
  r.set(PayloadSchemaRegistry.compile('telemetry', 'sensors/+/telemetry', TELEMETRY))
  r.set(PayloadSchemaRegistry.compile('unit-rule', 'sensors/#', UNIT_RULE))
  return r
}

test('compile: the accelerator is built for a supported schema only', () => {
  assert.notEqual(PayloadSchemaRegistry.compile('telemetry', 'a/b', TELEMETRY).fast, undefined)
  assert.equal(PayloadSchemaRegistry.compile('unit-rule', 'a/b', UNIT_RULE).fast, undefined)
})

test('a fast-path schema and an Ajv-only schema on one topic: conforming payloads pass', () => {
  const r = twoSchemas()
  for (const p of ['{"t":21.5,"unit":"C"}', '{ "t" : 1e1 , "samples" : [1, 2.0, 3] }', '{"t":"x","t":5,"unit":"F"}', '{"\\u0074":5,"unit":"C"}']) {
    assert.equal(r.validate('sensors/s1/telemetry', bytes(p)), PAYLOAD_ACCEPTED, p)
  }
  assert.equal(r.validate('sensors/s1/telemetry', new Uint8Array(bytes('{"t":30,"unit":"C"}'))), PAYLOAD_ACCEPTED)
})

test('rejections carry Ajv\'s exact schemaPath, instancePath and message, from whichever schema refused', () => {
  const r = twoSchemas()
  const cases: Array<[string, Record<string, unknown>]> = [
    ['{"t":200,"unit":"C"}', { schemaName: 'telemetry', schemaPath: '#/properties/t/maximum', instancePath: '/t', message: 'must be <= 100' }],
    ['{"t":"hot"}', { schemaName: 'telemetry', schemaPath: '#/properties/t/type', instancePath: '/t', message: 'must be number' }],
    ['{"unit":"C"}', { schemaName: 'telemetry', schemaPath: '#/required', instancePath: '', message: 'must have required property \'t\'' }],
    ['{"t":1,"x":1}', { schemaName: 'telemetry', schemaPath: '#/additionalProperties', instancePath: '', message: 'must NOT have additional properties' }],
    ['{"t":1,"unit":"K"}', { schemaName: 'telemetry', schemaPath: '#/properties/unit/enum', instancePath: '/unit', message: 'must be equal to one of the allowed values' }],
    ['{"t":1,"samples":[1,2.5]}', { schemaName: 'telemetry', schemaPath: '#/properties/samples/items/type', instancePath: '/samples/1', message: 'must be integer' }],
    ['{"t":"x","t":500}', { schemaName: 'telemetry', schemaPath: '#/properties/t/maximum', instancePath: '/t', message: 'must be <= 100' }],
    // Conforms to telemetry (the accelerator accepts it) but not to the Ajv-only schema.
    ['{"t":50}', { schemaName: 'unit-rule', schemaPath: '#/oneOf/0/required', instancePath: '', message: 'must have required property \'unit\'' }],
    ['{"t":20,"unit":"C","samples":[]}', { schemaName: 'unit-rule', schemaPath: '#/oneOf', instancePath: '', message: 'must match exactly one schema in oneOf' }],
    ['{"t":1}x', { schemaName: 'telemetry', schemaPath: '#', instancePath: '', message: 'payload is not UTF-8 JSON' }],
    ['', { schemaName: 'telemetry', schemaPath: '#', instancePath: '', message: 'payload is not UTF-8 JSON' }],
  ]
  for (const [p, want] of cases) assert.deepEqual(r.validate('sensors/s1/telemetry', bytes(p)), { allowed: false, ...want }, p)
  assert.deepEqual(r.validate('sensors/s1/telemetry', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])),
    { allowed: false, schemaName: 'telemetry', schemaPath: '#', instancePath: '', message: 'payload is not UTF-8 JSON' })
  // Only the Ajv-only schema matches this topic.
  assert.deepEqual(r.validate('sensors/s1/status', bytes('{"t":50}')),
    { allowed: false, schemaName: 'unit-rule', schemaPath: '#/oneOf/0/required', instancePath: '', message: 'must have required property \'unit\'' })
  assert.equal(r.stats.validations, cases.length + 2)
  assert.equal(r.stats.failures, cases.length + 2)
  assert.deepEqual(r.check('telemetry', bytes('{"t":-51}')),
    { allowed: false, schemaName: 'telemetry', schemaPath: '#/properties/t/minimum', instancePath: '/t', message: 'must be >= -50' })
  assert.equal(r.check('telemetry', bytes('{"t":-50}')), PAYLOAD_ACCEPTED)
})

test('the fast path skips Ajv entirely; when the accelerator is not sure, Ajv decides', () => {
  const entry = PayloadSchemaRegistry.compile('telemetry', 'sensors/#', TELEMETRY)
  let ajvCalls = 0
  const spy = Object.assign((data: unknown): boolean => { ajvCalls++; const ok = entry.validate(data); spy.errors = entry.validate.errors; return ok }, { errors: entry.validate.errors })
  const r = new PayloadSchemaRegistry()
  r.set({ ...entry, validate: spy as unknown as ValidateFunction })
  assert.equal(r.validate('sensors/a', bytes('{"t":21.5,"samples":[1,2,3]}')), PAYLOAD_ACCEPTED)
  assert.equal(ajvCalls, 0)
  // A duplicate key whose first value is wrong: JSON.parse keeps the last, Ajv accepts; the accelerator declined.
  assert.equal(r.validate('sensors/a', bytes('{"t":"x","t":5}')), PAYLOAD_ACCEPTED)
  assert.equal(ajvCalls, 1)
  assert.equal(r.validate('sensors/a', bytes('{"t":500}')).allowed, false)
  assert.equal(ajvCalls, 2)
  assert.equal(r.stats.validations, 3)
  assert.equal(r.stats.failures, 1)
})

test('topic matching: `#` covers the parent level, `+` one level, wildcard-first filters skip `$` topics [MQTT-4.7.2-1]', () => {
  const r = new PayloadSchemaRegistry()
  r.set(PayloadSchemaRegistry.compile('all', '#', { type: 'object' }))
  r.set(PayloadSchemaRegistry.compile('plant', 'plant/+/line/#', { required: ['p'] }))
  const refusedBy = (topic: string, payload: string): string => {
    const v = r.validate(topic, bytes(payload))
    return v.allowed ? '' : v.schemaName
  }
  assert.equal(refusedBy('x', '[]'), 'all')
  assert.equal(refusedBy('$aws/things/a/shadow/update', '[]'), '', 'a wildcard-first filter never matches a $ topic')
  for (const topic of ['plant/p1/line', 'plant/p1/line/3/temp', 'plant//line']) assert.equal(refusedBy(topic, '{}'), 'plant', topic)
  for (const topic of ['plant/p1', 'plant/p1/p2/line', 'plant/line', 'x/plant/p1/line']) assert.equal(refusedBy(topic, '{}'), '', topic)
  // A cached answer does not outlive the schema (the cache is dropped on every change).
  r.remove('all')
  assert.equal(refusedBy('x', '[]'), '')
  assert.equal(refusedBy('plant/p1/line', '{}'), 'plant')
})
