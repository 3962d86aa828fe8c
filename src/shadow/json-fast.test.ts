/**
 * The byte-level payload-schema accelerator: per-keyword tables (what it accepts, and that Ajv agrees whenever it
 * does), the schemas it refuses to compile, the JSON grammar, the word-at-a-time string scanner at every alignment,
 * and a seeded differential test against the full path (isUtf8 + JSON.parse + Ajv, as payload-schemas.ts runs it).
 * The property that matters is soundness: fast true ⇒ Ajv true.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isUtf8 } from 'node:buffer'
import { compileFastAccept } from './json-fast.ts'
import type { FastValidator } from './json-fast.ts'
import { PayloadSchemaRegistry } from './payload-schemas.ts'
import { seededRandom } from '../../test/helpers/random.ts'

type Schema = Record<string, unknown> | boolean

/** The registry's full path: what the accelerator must never contradict when it says true. */
function fullAccepts (schema: Schema, bytes: Uint8Array): boolean {
  const entry = PayloadSchemaRegistry.compile('t', '#', typeof schema === 'boolean' ? (schema ? {} : { not: {} }) : schema)
  return fullWith(entry.validate, bytes)
}

function fullWith (validate: (data: unknown) => boolean, bytes: Uint8Array): boolean {
  if (!isUtf8(bytes)) return false
  let data: unknown
  try {
    data = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    return false
  }
  return validate(data)
}

function fast (schema: Schema): FastValidator {
  const f = compileFastAccept(schema)
  assert.ok(f !== undefined, `schema should be supported: ${JSON.stringify(schema)}`)
  return f
}

const bytesOf = (p: string | Uint8Array): Uint8Array => typeof p === 'string' ? Buffer.from(p, 'utf8') : p

/**
 * Rows: [schema, payload, fast verdict expected, Ajv's verdict]. Where fast says false but Ajv true, the
 * accelerator is only being careful (the full path then accepts).
 */
type Row = readonly [Schema, string | Uint8Array, boolean, boolean]

function check (rows: readonly Row[]): void {
  for (const [schema, payload, wantFast, wantAjv] of rows) {
    const b = bytesOf(payload)
    const shown = `${JSON.stringify(schema)} ${typeof payload === 'string' ? JSON.stringify(payload) : Buffer.from(b).toString('hex')}`
    assert.equal(fullAccepts(schema, b), wantAjv, `Ajv: ${shown}`)
    assert.equal(fast(schema).accept(b), wantFast, `fast: ${shown}`)
  }
}

const nines = (k: number): string => '9'.repeat(k)

test('type: integer is Number.isInteger of the parsed value (1.0, 1e2), finite only', () => {
  const s = { type: 'integer' }
  check([
    [s, '1', true, true], [s, '-0', true, true], [s, '1.0', true, true], [s, '1e2', true, true], [s, '1E+2', true, true],
    [s, '1.5', false, false], [s, '1e-1', false, false], [s, '1e-400', true, true], [s, '12345678901234567890123', true, true],
    [s, '1e400', false, false], [s, '-1e400', false, false], [s, `1${'0'.repeat(309)}`, false, false], [s, nines(308), true, true],
    [s, '"1"', false, false], [s, 'true', false, false], [s, 'null', false, false],
  ])
})

test('type: number is finite; strings, booleans, null, objects, arrays by their own types', () => {
  check([
    [{ type: 'number' }, '1.5', true, true], [{ type: 'number' }, '-0.0', true, true], [{ type: 'number' }, '1e308', true, true],
    [{ type: 'number' }, '1e309', false, false], [{ type: 'number' }, `${nines(400)}.5`, false, false], [{ type: 'number' }, '"x"', false, false],
    [{ type: 'string' }, '"x"', true, true], [{ type: 'string' }, '1', false, false],
    [{ type: 'boolean' }, 'false', true, true], [{ type: 'boolean' }, 'true', true, true], [{ type: 'boolean' }, '0', false, false],
    [{ type: 'null' }, 'null', true, true], [{ type: 'null' }, '{}', false, false],
    [{ type: 'object' }, '{}', true, true], [{ type: 'object' }, '[]', false, false], [{ type: 'object' }, 'null', false, false],
    [{ type: 'array' }, '[]', true, true], [{ type: 'array' }, '{}', false, false],
    [{ type: ['string', 'null'] }, 'null', true, true], [{ type: ['string', 'null'] }, '"a"', true, true], [{ type: ['string', 'null'] }, '0', false, false],
    [{ type: ['integer', 'boolean'] }, '2.0', true, true], [{ type: ['integer', 'boolean'] }, '2.5', false, false],
  ])
})

test('minimum, maximum, exclusiveMinimum, exclusiveMaximum: exact values, -0, keywords ignore other types', () => {
  check([
    [{ minimum: 0 }, '-0', true, true], [{ exclusiveMinimum: 0 }, '-0', false, false], [{ exclusiveMinimum: 0 }, '5e-324', true, true],
    [{ minimum: 0.1 }, '0.1', true, true], [{ minimum: 0.1 }, '1e-1', true, true], [{ minimum: 0.1 }, '0.09999999999999999', false, false],
    [{ maximum: 0.3 }, '0.30000000000000004', false, false], [{ maximum: 0.3 }, '0.30000000000000001', true, true],
    [{ maximum: 1e23 }, '1e23', true, true], [{ maximum: 1e23 }, '100000000000000000000001', false, false], [{ maximum: 1e23 }, '99999999999999991611392', true, true], [{ maximum: 1e23 }, '1.0000000000000001e23', false, false],
    [{ exclusiveMaximum: 10 }, '10', false, false], [{ exclusiveMaximum: 10 }, '9.999999999999999', true, true],
    [{ minimum: 5 }, '"abc"', true, true], [{ minimum: 5 }, '{"a":1}', true, true], [{ type: 'integer', minimum: 0, maximum: 100 }, '100.0', true, true],
    [{ minimum: -50, maximum: 100 }, '-50', true, true], [{ minimum: -50, maximum: 100 }, '-50.0000000000001', false, false],
  ])
})

test('enum and const: primitives with ===, escaped strings decoded, any type', () => {
  check([
    [{ enum: ['ok', 'fault'] }, '"ok"', true, true], [{ enum: ['ok', 'fault'] }, '"\\u006fk"', true, true], [{ enum: ['ok'] }, '"OK"', false, false],
    [{ enum: ['ok'] }, '{"ok":1}', false, false], [{ enum: ['ok'] }, '["ok"]', false, false],
    [{ enum: [1, 'a', null, true] }, '1.0', true, true], [{ enum: [1, 'a', null, true] }, 'null', true, true], [{ enum: [1, 'a', null, true] }, 'false', false, false],
    [{ enum: [0] }, '-0', true, true], [{ enum: [0.1] }, '1e-1', true, true], [{ enum: [123456789012345680] }, '123456789012345678', true, true],
    [{ const: 'é' }, '"é"', true, true], [{ const: 'é' }, '"\\u00e9"', true, true], [{ const: 'é' }, '"e\\u0301"', false, false],
    [{ const: '\ud83d' }, '"\\ud83d"', true, true], [{ const: 'a"b' }, '"a\\"b"', true, true], [{ const: false }, 'false', true, true], [{ const: false }, '0', false, false],
    [{ type: 'string', enum: ['ok', 1] }, '1', false, false], [{ enum: ['ok'], const: 'ok' }, '"ok"', true, true],
  ])
})

test('minLength and maxLength count code points as Ajv (a surrogate pair is one, a lone surrogate one)', () => {
  check([
    [{ maxLength: 1 }, '"😀"', true, true], [{ maxLength: 1 }, '"\\ud83d\\ude00"', true, true], [{ maxLength: 1 }, '"\\ud83d"', true, true],
    [{ maxLength: 1 }, '"\\ud83d\\ud83d"', false, false], [{ maxLength: 1 }, '"\\ude00\\ud83d"', false, false], [{ maxLength: 1 }, '"é"', true, true],
    [{ maxLength: 1 }, '"ab"', false, false], [{ maxLength: 1 }, '"\\n"', true, true], [{ maxLength: 2 }, '"😀😀"', true, true], [{ maxLength: 2 }, '"😀😀😀"', false, false],
    [{ minLength: 2 }, '"😀"', false, false], [{ minLength: 2 }, '"é€"', true, true], [{ minLength: 1 }, '""', false, false], [{ minLength: 3, maxLength: 3 }, '"€€€"', true, true],
    [{ maxLength: 3 }, `"${'é'.repeat(3)}"`, true, true], [{ maxLength: 3 }, `"${'é'.repeat(4)}"`, false, false], [{ minLength: 5 }, '12345', true, true],
  ])
})

test('pattern: new RegExp(p, "u").test on the decoded string', () => {
  check([
    [{ pattern: '^\\p{L}+$' }, '"héllo"', true, true], [{ pattern: '^\\p{L}+$' }, '"h3llo"', false, false], [{ pattern: '^.$' }, '"😀"', true, true],
    [{ pattern: '^a$' }, '"\\u0061"', true, true], [{ pattern: 'x' }, '"yxy"', true, true], [{ pattern: '^sensor-[0-9]{4}$' }, '"sensor-0001"', true, true],
    [{ pattern: '^sensor-[0-9]{4}$' }, '"sensor-001"', false, false], [{ pattern: '^a' }, '12', true, true],
  ])
})

test('properties, required, additionalProperties: duplicates, escaped keys, __proto__, unknown keys', () => {
  const num = { properties: { a: { type: 'number' } } }
  const closed = { properties: { a: { type: 'number' } }, required: ['a'], additionalProperties: false }
  check([
    [num, '{"a":1}', true, true], [num, '{"a":"x"}', false, false], [num, '{}', true, true], [num, '{"b":"x"}', true, true],
    [num, '{"a":1,"a":"x"}', false, false], [num, '{"a":"x","a":1}', false, true], [num, '{"\\u0061":"x"}', false, false], [num, '{"\\u0061":2}', true, true],
    [closed, '{"a":1}', true, true], [closed, '{}', false, false], [closed, '{"a":1,"b":2}', false, false], [closed, '{"\\u0061":1}', true, true],
    [closed, '{"a":1,"__proto__":2}', false, false], [{ type: 'object' }, '{"__proto__":{"a":1}}', true, true],
    [num, '{"__proto__":{"a":"x"}}', true, true], [{ required: ['a'] }, '{"b":1}', false, false], [{ required: ['a'] }, '[1]', true, true],
    [{ required: ['a'], additionalProperties: false }, '{"a":1}', false, false], [{ additionalProperties: { type: 'number' } }, '{"x":1,"y":2}', true, true],
    [{ additionalProperties: { type: 'number' } }, '{"x":1,"y":"2"}', false, false], [{ properties: { a: false } }, '{"a":1}', false, false],
    [{ properties: { a: false } }, '{"b":1}', true, true], [{ properties: { 'a"b': { type: 'string' } } }, '{"a\\"b":"x"}', true, true],
    [{ properties: { 'a"b': { type: 'string' } } }, '{"a\\"b":1}', false, false], [{ properties: { é: { type: 'string' } }, required: ['é'] }, '{"é":"x"}', true, true],
    [{ required: ['toString'] }, '{}', false, true],
    // Names that need escaping in JSON never match raw bytes: `{"a"b":1}` is not JSON.
    [{ properties: { 'a"b': {} } }, '{"a"b":1}', false, false], [{ properties: { 'x\\y': {} } }, '{"x\\y":1}', false, false],
    [{ properties: { 'x\\y': {} } }, '{"x\\\\y":1}', true, true], [{ properties: { 'a\nb': {} } }, '{"a\nb":1}', false, false],
    [{ properties: { 'a\nb': { type: 'string' } } }, '{"a\\nb":1}', false, false],
  ])
})

test('minProperties and maxProperties count distinct keys (Object.keys)', () => {
  check([
    [{ minProperties: 2 }, '{"a":1,"b":2}', true, true], [{ minProperties: 2 }, '{"a":1,"a":2}', false, false], [{ maxProperties: 1 }, '{"a":1,"a":2}', true, true],
    [{ maxProperties: 1 }, '{"a":1,"b":2}', false, false], [{ minProperties: 3, properties: { a: {} } }, '{"a":1,"b":1,"b":2,"c":3}', true, true],
    [{ minProperties: 3, properties: { a: {} } }, '{"a":1,"b":1,"b":2,"a":3}', false, false], [{ minProperties: 2 }, '{"\\u0061":1,"b":2}', false, true],
  ])
})

test('items, minItems, maxItems (a single items schema)', () => {
  check([
    [{ items: { type: 'number' } }, '[1,2.5,-3e2]', true, true], [{ items: { type: 'number' } }, '[1,"2"]', false, false], [{ items: { type: 'number' } }, '[1,1e999]', false, false],
    [{ items: { type: 'integer' } }, '[1,2.0,3]', true, true], [{ items: { type: 'integer' } }, '[1,2.5]', false, false], [{ items: { type: 'number' } }, '[ 1 , 2 ]', true, true],
    [{ minItems: 2 }, '[1]', false, false], [{ minItems: 2 }, '[1,[]]', true, true], [{ maxItems: 1 }, '[1,2]', false, false], [{ maxItems: 1 }, '[]', true, true],
    [{ items: false }, '[]', true, true], [{ items: false }, '[1]', false, false], [{ items: { enum: ['a'] } }, '["a","a"]', true, true],
  ])
})

test('grammar: exactly what JSON.parse accepts, after isUtf8', () => {
  const any = {}
  const rows: Row[] = [
    [any, '', false, false], [any, ' \t\r\n', false, false], [any, ' 1 ', true, true], [any, '\ufeff{}', false, false], [any, '{}x', false, false], [any, '{} {}', false, false],
    [any, '01', false, false], [any, '-', false, false], [any, '1.', false, false], [any, '.5', false, false], [any, '1e', false, false], [any, '1e+', false, false],
    [any, '+1', false, false], [any, '-01', false, false], [any, '0x1', false, false], [any, 'NaN', false, false], [any, 'Infinity', false, false], [any, '-0', true, true],
    [any, '"a\u0001b"', false, false], [any, '"a\u001fb"', false, false], [any, '"\u007f"', true, true], [any, '"\\x41"', false, false], [any, '"\\u12"', false, false],
    [any, '"\\u12G4"', false, false], [any, '"\\uD800"', true, true], [any, '"\\/\\b\\f\\n\\r\\t\\"\\\\"', true, true], [any, '"abc', false, false], [any, '"abc\\"', false, false],
    [any, "'a'", false, false], [any, '[1,]', false, false], [any, '[,1]', false, false], [any, '{"a":1,}', false, false], [any, '{,}', false, false], [any, '{"a"}', false, false],
    [any, '{"a" 1}', false, false], [any, '{a:1}', false, false], [any, '[1 2]', false, false], [any, '[1}', false, false], [any, '{"a":1]', false, false],
    [any, 'nul', false, false], [any, 'tru', false, false], [any, 'True', false, false], [any, 'nulll', false, false], [any, '\u000b1', false, false], [any, '\f1', false, false],
    [any, '\u00a01', false, false], [any, '[[[]]]', true, true], [any, '{"a":{"b":[{"c":null}]}}', true, true], [any, '[[[]]', false, false],
    [any, Buffer.from([0x22, 0xff, 0x22]), false, false], [any, Buffer.from([0x22, 0xc0, 0x80, 0x22]), false, false], [any, Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), false, false],
    [any, Buffer.from([0x22, 0xe2, 0x82, 0x22]), false, false], [any, Buffer.from([0x22, 0xf0, 0x9f, 0x98, 0x80, 0x22]), true, true],
  ]
  check(rows)
  check(rows.map(([, p, f, a]) => [{ properties: { x: {} } }, p, f, a] as const))
  check([[true, '[1]', true, true], [true, '[1', false, false]])
})

test('deep nesting under an unconstrained property: checked iteratively, never throws', () => {
  const depth = 100_000
  const schema = { type: 'object', properties: { deep: {}, n: { type: 'number' } } }
  const good = `{"n":1,"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`
  const goodObjects = `{"deep":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`
  const bad = `{"n":1,"deep":${'['.repeat(depth)}${']'.repeat(depth - 1)}}}`
  const f = fast(schema)
  assert.equal(f.accept(bytesOf(good)), true)
  assert.equal(f.accept(bytesOf(goodObjects)), true)
  assert.equal(f.accept(bytesOf(bad)), false)
  assert.equal(fast({}).accept(bytesOf(`${'['.repeat(depth)}${']'.repeat(depth)}`)), true)
  assert.equal(fullAccepts(schema, bytesOf(good)), true)
})

test('the word-at-a-time string scanner: every alignment, length and position of a stop byte', () => {
  const schema = { type: 'object', properties: { s: { type: 'string' } } }
  const f = fast(schema)
  const g = fast({})
  const entry = PayloadSchemaRegistry.compile('t', '#', schema)
  const backing = new Uint8Array(200)
  for (let offset = 0; offset < 8; offset++) {
    for (let len = 0; len <= 70; len++) {
      for (let pos = -1; pos < len; pos++) {
        for (const bad of [0x00, 0x1f, 0x22, 0x5c, 0x0a]) {
          const text = `{"s":"${'x'.repeat(len)}"}`
          const b = backing.subarray(offset, offset + text.length)
          b.set(Buffer.from(text, 'latin1'))
          if (pos >= 0) b[6 + pos] = bad
          const want = fullWith(entry.validate, b)
          assert.equal(f.accept(b), want, `offset ${offset} len ${len} pos ${pos} byte ${bad}`)
          assert.equal(g.accept(b), want, `offset ${offset} len ${len} pos ${pos} byte ${bad} (skipper)`)
        }
      }
    }
  }
})

test('schemas outside the subset compile to undefined (Ajv alone then validates)', () => {
  const unsupported: unknown[] = [
    { $ref: '#' }, { allOf: [{}] }, { anyOf: [{}] }, { oneOf: [{}] }, { not: {} }, { if: {}, then: {} }, { format: 'email' }, { multipleOf: 2 },
    { patternProperties: { a: {} } }, { dependencies: { a: ['b'] } }, { propertyNames: { maxLength: 3 } }, { contains: {} }, { uniqueItems: true },
    { items: [{}] }, { additionalItems: false }, { definitions: {} }, { properties: { a: { $id: 'x' } } }, { properties: { a: { $schema: 'x' } } },
    { enum: [{}] }, { enum: [[1]] }, { const: { a: 1 } }, { const: [1] }, { properties: { toString: {} } }, { properties: { constructor: { type: 'string' } } },
    { type: [] }, { type: 'float' }, { type: 5 }, { properties: { a: { oneOf: [{}] } } }, { items: { anyOf: [{}] } },
    { additionalProperties: { not: {} } }, { minimum: '1' }, { maxLength: 1.5 }, { pattern: '(' }, { required: [1] }, { properties: { '\ud800': {} } },
    { nullable: true }, { readOnly: true }, { $schema: 'https://json-schema.org/draft/2020-12/schema' }, [], 'x', null,
  ]
  for (const s of unsupported) assert.equal(compileFastAccept(s), undefined, JSON.stringify(s))
  const proto: Record<string, unknown> = JSON.parse('{"properties":{"__proto__":{"type":"string"}}}') as Record<string, unknown>
  assert.equal(compileFastAccept(proto), undefined)
  assert.notEqual(compileFastAccept({ $schema: 'http://json-schema.org/draft-07/schema#', $id: 'https://x/y', title: 't', description: 'd', $comment: 'c', default: 1, examples: [1] }), undefined)
})

test('linear time: a long string with many escapes, many long unknown keys under minProperties', () => {
  const t0 = performance.now()
  const escaped = `{"s":"${'abcdefghijklmn\\n'.repeat(65_536)}"}`
  assert.equal(fast({ properties: { s: { type: 'string' } } }).accept(bytesOf(escaped)), true)
  assert.equal(fast({}).accept(bytesOf(escaped)), true)
  const keys = `{${Array.from({ length: 64 }, (_, i) => `"${'k'.repeat(20_000)}${i}":1`).join(',')}}`
  assert.equal(fast({ minProperties: 65 }).accept(bytesOf(keys)), false)
  // Quadratic scanning would take minutes here.
  assert.ok(performance.now() - t0 < 5000)
})

test('a plain Uint8Array and a Buffer slice give the same verdicts', () => {
  const f = fast({ type: 'object', properties: { note: { type: 'string', maxLength: 100 } } })
  const text = `{"note":"${'y'.repeat(90)}"}`
  const u8 = new Uint8Array(Buffer.from(text))
  assert.equal(f.accept(u8), true)
  const big = Buffer.from(`xx${text}yy`)
  assert.equal(f.accept(big.subarray(2, 2 + text.length)), true)
  assert.equal(f.acceptUtf8(big.subarray(2, 2 + text.length)), true)
})

// ---- differential property test ----------------------------------------------------------------------------

class Gen {
  readonly #r: () => number
  constructor (seed: number) { this.#r = seededRandom(seed) }
  next (): number { return this.#r() }
  int (lo: number, hi: number): number { return lo + Math.floor(this.#r() * (hi - lo + 1)) }
  chance (p: number): boolean { return this.#r() < p }
  pick<T> (xs: readonly T[]): T { return xs[Math.floor(this.#r() * xs.length)] }
}

const NAMES = ['a', 'b', 'id', 'temp', 'é', 'k y', 'a"b', 'x\\y', '😀', 'ts', 'm0', 'm1', 'values', '']
const STRINGS = ['', 'a', 'ok', 'fault', 'é', '😀', 'a"b', 'x\\y', 'line\nbreak', 'sensor-0001', '\u2028', 'tab\t', '\ud83d', 'ÿ', 'abc', 'ABC', '12']
const PATTERNS = ['^[a-z]*$', '^\\p{L}*$', '^.{0,3}$', 'a', '^sensor-[0-9]{4}$', '\\d', '^$', '[😀]']
const NUMBERS = [0, -0, 1, -1, 0.1, 0.5, 2.5, 100, -50, 1e21, 1e-7, 123456789012345680, 0.30000000000000004, 9007199254740993, 5e-324, 1.7976931348623157e308]

function genSchema (g: Gen, depth: number): Schema {
  if (g.chance(0.05)) return g.chance(0.8)
  const s: Record<string, unknown> = {}
  const kind = g.pick(depth > 2 ? ['string', 'number', 'integer', 'boolean', 'enum', 'multi'] : ['object', 'object', 'array', 'string', 'number', 'integer', 'boolean', 'null', 'enum', 'const', 'multi', 'none'])
  if (kind === 'object' || (kind === 'none' && g.chance(0.5))) {
    if (kind === 'object') s.type = 'object'
    const props: Record<string, Schema> = {}
    for (let i = g.int(0, 5); i > 0; i--) props[g.pick(NAMES)] = genSchema(g, depth + 1)
    if (g.chance(0.9)) s.properties = props
    const names = Object.keys(props)
    if (g.chance(0.6)) s.required = [...new Set([...names.filter(() => g.chance(0.6)), ...(g.chance(0.1) ? [g.pick(NAMES)] : [])])]
    if (g.chance(0.4)) s.additionalProperties = g.chance(0.6) ? false : genSchema(g, depth + 1)
    if (g.chance(0.15)) s.minProperties = g.int(0, 3)
    if (g.chance(0.15)) s.maxProperties = g.int(1, 6)
  } else if (kind === 'array' || kind === 'none') {
    if (kind === 'array') s.type = 'array'
    if (g.chance(0.85)) s.items = genSchema(g, depth + 1)
    if (g.chance(0.2)) s.minItems = g.int(0, 3)
    if (g.chance(0.2)) s.maxItems = g.int(1, 8)
  } else if (kind === 'string') {
    s.type = 'string'
    if (g.chance(0.3)) s.minLength = g.int(0, 3)
    if (g.chance(0.3)) s.maxLength = g.int(0, 12)
    if (g.chance(0.3)) s.pattern = g.pick(PATTERNS)
    if (g.chance(0.15)) s.enum = [...new Set(Array.from({ length: g.int(1, 4) }, () => g.pick(STRINGS)))]
  } else if (kind === 'number' || kind === 'integer') {
    s.type = kind
    const lo = g.pick([-100, -1, 0, 0.5, 1, 10])
    if (g.chance(0.4)) s.minimum = lo
    if (g.chance(0.4)) s.maximum = lo + g.pick([0, 0.1, 1, 50, 1e6])
    if (g.chance(0.2)) s.exclusiveMinimum = lo - g.pick([0, 1])
    if (g.chance(0.2)) s.exclusiveMaximum = lo + g.pick([1, 100])
  } else if (kind === 'boolean' || kind === 'null') {
    s.type = kind
  } else if (kind === 'enum') {
    s.enum = [...new Set(Array.from({ length: g.int(1, 5) }, () => g.pick([g.pick(STRINGS), g.pick(NUMBERS), true, false, null])))]
  } else if (kind === 'const') {
    s.const = g.pick([g.pick(STRINGS), g.pick(NUMBERS), true, null])
  } else {
    s.type = [...new Set(Array.from({ length: g.int(1, 3) }, () => g.pick(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'])))]
    if (g.chance(0.3)) s.minimum = 0
    if (g.chance(0.3)) s.maxLength = 4
  }
  if (depth === 0 && g.chance(0.1)) s.title = 'generated'
  return s
}

const typesOf = (s: Record<string, unknown>): string[] => s.type === undefined ? [] : Array.isArray(s.type) ? s.type as string[] : [s.type as string]

/** A value meant to conform to the schema (not always: Ajv is the judge of what conforms). */
function genValue (g: Gen, schema: Schema, depth: number): unknown {
  if (typeof schema === 'boolean') return g.pick([1, 'x', null, [], {}])
  if (Array.isArray(schema.enum)) return g.pick(schema.enum as unknown[])
  if ('const' in schema) return schema.const
  const types = typesOf(schema)
  const type = types.length > 0 ? g.pick(types) : schema.properties !== undefined || schema.required !== undefined ? 'object' : schema.items !== undefined ? 'array' : g.pick(['object', 'array', 'string', 'number', 'boolean', 'null'])
  switch (type) {
    case 'object': {
      const o: Record<string, unknown> = {}
      const props = (schema.properties ?? {}) as Record<string, Schema>
      for (const k of Object.keys(props)) if (g.chance(0.8) || ((schema.required ?? []) as string[]).includes(k)) o[k] = genValue(g, props[k], depth + 1)
      for (const k of (schema.required ?? []) as string[]) if (!(k in o)) o[k] = genValue(g, (schema.additionalProperties ?? {}) as Schema, depth + 1)
      if (schema.additionalProperties !== false && g.chance(0.3)) o[g.pick(['extra', 'z', 'n1'])] = genValue(g, (schema.additionalProperties ?? {}) as Schema, depth + 1)
      const min = (schema.minProperties ?? 0) as number
      for (let i = 0; Object.keys(o).length < min && i < 5; i++) o[`p${i}`] = genValue(g, (schema.additionalProperties ?? {}) as Schema, depth + 1)
      return o
    }
    case 'array': {
      const lo = (schema.minItems ?? 0) as number
      const hi = Math.max(lo, Math.min((schema.maxItems ?? 6) as number, 6))
      return Array.from({ length: g.int(lo, hi) }, () => depth > 4 ? 0 : genValue(g, (schema.items ?? {}) as Schema, depth + 1))
    }
    case 'string': {
      const pattern = schema.pattern as string | undefined
      if (pattern === '^sensor-[0-9]{4}$') return `sensor-${String(g.int(0, 9999)).padStart(4, '0')}`
      const lo = (schema.minLength ?? 0) as number
      const hi = Math.max(lo, (schema.maxLength ?? 8) as number)
      const alphabet = pattern === '^[a-z]*$' ? ['a', 'q', 'z'] : pattern === '^\\p{L}*$' ? ['a', 'é', 'Ж'] : pattern === '\\d' ? ['1'] : ['a', 'é', '😀', '"', '\\', '\n', 'x', '€', '\ud83d', '/']
      let out = ''
      for (let i = g.int(lo, hi); i > 0; i--) out += g.pick(alphabet)
      return pattern === 'a' || pattern === '[😀]' ? `${pattern === 'a' ? 'a' : '😀'}${out}` : out
    }
    case 'integer':
    case 'number': {
      const lo = Math.max((schema.minimum ?? -1e3) as number, ((schema.exclusiveMinimum ?? -Infinity) as number) + 1)
      const hi = Math.min((schema.maximum ?? 1e3) as number, ((schema.exclusiveMaximum ?? Infinity) as number) - 1, lo + 1e6)
      const v = lo + g.next() * Math.max(0, hi - lo)
      return type === 'integer' || g.chance(0.3) ? Math.ceil(v) : v
    }
    case 'boolean': return g.chance(0.5)
    default: return null
  }
}

const unicodeEscape = (ch: string): string => {
  let out = ''
  for (let k = 0; k < ch.length; k++) out += `\\u${ch.charCodeAt(k).toString(16).padStart(4, '0')}`
  return out
}

/** JSON text for a value, with the liberties JSON allows: whitespace, escapes, number spellings, key order. */
function serialize (g: Gen, v: unknown, style: { ws: boolean, escapes: boolean, numbers: boolean }): string {
  const ws = (): string => style.ws && g.chance(0.3) ? g.pick([' ', '\n', '\t', '\r\n  ']) : ''
  if (typeof v === 'string') {
    if (!style.escapes) return JSON.stringify(v)
    // Code point by code point (a lone surrogate comes alone): must-escapes and random ones, every form JSON has.
    let out = '"'
    for (const ch of v) {
      const c = ch.codePointAt(0) ?? 0
      const lone = c >= 0xd800 && c <= 0xdfff
      if (ch === '"' || ch === '\\') out += g.chance(0.5) ? `\\${ch}` : unicodeEscape(ch)
      else if (ch === '\n' && g.chance(0.5)) out += '\\n'
      else if (ch === '/' && g.chance(0.5)) out += '\\/'
      else if (c < 0x20 || lone || g.chance(0.2)) out += unicodeEscape(ch)
      else out += ch
    }
    return `${out}"`
  }
  if (typeof v === 'number') {
    const s = JSON.stringify(v)
    if (!style.numbers || g.chance(0.5)) return Object.is(v, -0) && g.chance(0.5) ? '-0' : s
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return g.pick([`${v}.0`, `${v}e0`, `${v * 10}e-1`, `${v}E+0`, `${v}.000`])
    return g.pick([s, `${s}0`, s.replace('e', 'E')])
  }
  if (Array.isArray(v)) return `[${ws()}${v.map(x => `${ws()}${serialize(g, x, style)}${ws()}`).join(',')}${ws()}]`
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v)
    if (style.ws && g.chance(0.3)) entries.reverse()
    return `{${ws()}${entries.map(([k, x]) => `${ws()}${serialize(g, k, style)}${ws()}:${ws()}${serialize(g, x, style)}`).join(',')}${ws()}}`
  }
  return JSON.stringify(v) ?? 'null'
}

/** Damages a payload: JSON-level (type swaps, ranges, keys) or byte-level (drop, insert, flip, truncate). */
function mutate (g: Gen, text: string, value: unknown): Uint8Array {
  const kind = g.int(0, 9)
  if (kind <= 3) {
    const b = Buffer.from(text, 'utf8')
    if (b.length === 0) return Buffer.from([g.int(0, 255)])
    const at = g.int(0, b.length - 1)
    const bytes = [...b]
    switch (kind) {
      case 0: bytes.splice(at, 1); break
      case 1: bytes.splice(at, 0, g.pick([0x00, 0x0a, 0x20, 0x22, 0x2c, 0x2d, 0x2e, 0x30, 0x31, 0x3a, 0x45, 0x5b, 0x5c, 0x5d, 0x65, 0x7b, 0x7d, 0x80, 0xc3, 0xef, 0xff, g.int(0, 255)])); break
      case 2: bytes[at] ^= 1 << g.int(0, 7); break
      default: bytes.length = at
    }
    return Buffer.from(bytes)
  }
  if (kind === 4) return Buffer.from(`\ufeff${text}`)
  if (kind === 5) return Buffer.from(`${text}${g.pick([' x', ',', '0', ']', '}', ' ', '\n', '"'])}`)
  // JSON-level: replace a random subtree.
  const swap = (v: unknown, d: number): unknown => {
    if (Array.isArray(v) && v.length > 0 && g.chance(0.7)) { const c = [...v]; const i = g.int(0, c.length - 1); c[i] = swap(c[i], d + 1); return c }
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && g.chance(0.7)) {
      const o: Record<string, unknown> = { ...v }
      const keys = Object.keys(o)
      if (keys.length > 0 && g.chance(0.3)) { delete o[g.pick(keys)]; return o }
      if (g.chance(0.2)) { o[g.pick(NAMES)] = g.pick([1, 'x', null]); return o }
      if (keys.length > 0) { const k = g.pick(keys); o[k] = swap(o[k], d + 1); return o }
    }
    return g.pick([g.pick(NUMBERS), -1e9, 1e300, 2.5, g.pick(STRINGS), 'x'.repeat(20), true, null, [], {}, [1, 'a']])
  }
  const mutated = swap(value, 0)
  const dup = kind === 9 && text.startsWith('{') && text.length > 2
  return Buffer.from(dup ? `{"a":1,${text.slice(1)}`.replace(/,}$/, '}') : serialize(g, mutated, { ws: g.chance(0.3), escapes: g.chance(0.3), numbers: g.chance(0.3) }))
}

test('differential: fast true ⇒ Ajv true on 24,000 generated (schema, payload) pairs; conforming payloads mostly take the fast path', () => {
  const seed = Number(process.env.JSON_FAST_SEED ?? 20260601)
  const g = new Gen(seed)
  let pairs = 0
  let conforming = 0
  let conformingFast = 0
  let fastTrue = 0
  for (let si = 0; si < 1200; si++) {
    const schema = genSchema(g, 0)
    const root = typeof schema === 'boolean' ? { type: 'object' } : schema
    let entry: ReturnType<typeof PayloadSchemaRegistry.compile>
    try {
      entry = PayloadSchemaRegistry.compile('t', '#', root)
    } catch {
      continue // a generated schema Ajv refuses (strict mode) is never installed
    }
    const f = entry.fast
    assert.ok(f !== undefined, `seed ${seed}: a supported schema was refused: ${JSON.stringify(root)}`)
    for (let pi = 0; pi < 20; pi++) {
      const value = genValue(g, root, 0)
      const text = serialize(g, value, { ws: g.chance(0.3), escapes: g.chance(0.3), numbers: g.chance(0.3) })
      const mutated = pi >= 8
      const bytes = mutated ? mutate(g, text, value) : Buffer.from(text, 'utf8')
      const got = f.accept(bytes)
      const want = fullWith(entry.validate, bytes)
      pairs++
      if (got) fastTrue++
      if (got && !want) {
        assert.fail(`UNSOUND (seed ${seed}, schema #${si}, payload #${pi}): fast accepted what Ajv rejects\nschema: ${JSON.stringify(root)}\npayload (hex): ${Buffer.from(bytes).toString('hex')}\npayload: ${Buffer.from(bytes).toString('utf8')}`)
      }
      if (!mutated && want) {
        conforming++
        if (got) conformingFast++
      }
    }
  }
  assert.ok(pairs >= 20_000, `only ${pairs} pairs`)
  assert.ok(conforming >= 5_000, `seed ${seed}: only ${conforming} conforming payloads generated`)
  const ratio = conformingFast / conforming
  assert.ok(ratio >= 0.95, `seed ${seed}: the fast path accepted only ${(ratio * 100).toFixed(1)} % of ${conforming} conforming payloads`)
  assert.ok(fastTrue > 0)
})

test('differential: numbers convert exactly as JSON.parse (Clinger fast path and the engine fallback)', () => {
  const seed = Number(process.env.JSON_FAST_SEED ?? 7)
  const g = new Gen(seed)
  for (let i = 0; i < 5000; i++) {
    const intPart = g.chance(0.2) ? '0' : `${g.int(1, 9)}${Array.from({ length: g.int(0, 20) }, () => g.int(0, 9)).join('')}`
    const frac = g.chance(0.5) ? `.${Array.from({ length: g.int(1, 20) }, () => g.int(0, 9)).join('')}` : ''
    const exp = g.chance(0.5) ? `${g.pick(['e', 'E'])}${g.pick(['', '+', '-'])}${g.int(0, 30)}` : ''
    const token = `${g.chance(0.3) ? '-' : ''}${intPart}${frac}${exp}`
    const v = JSON.parse(token) as number
    const shown = `seed ${seed}: ${token}`
    assert.equal(fast({ const: v }).accept(bytesOf(token)), true, shown)
    assert.equal(fast({ minimum: v, maximum: v }).accept(bytesOf(token)), true, shown)
    if (v !== 0) {
      const above = v + Math.abs(v) * Number.EPSILON
      if (above !== v) {
        assert.equal(fast({ minimum: above }).accept(bytesOf(token)), false, shown)
        assert.equal(fast({ const: above }).accept(bytesOf(token)), false, shown)
      }
    }
  }
})

test('differential: string lengths and decoding against Ajv on random escaped and unescaped strings', () => {
  const seed = Number(process.env.JSON_FAST_SEED ?? 11)
  const g = new Gen(seed)
  const units = ['a', 'é', '€', '😀', '\ud83d', '\ude00', '"', '\\', '\n', '\u0000', '/', '\u2028']
  const compiled = new Map<string, ReturnType<typeof PayloadSchemaRegistry.compile>>()
  const entry = (schema: Record<string, unknown>): ReturnType<typeof PayloadSchemaRegistry.compile> => {
    const key = JSON.stringify(schema)
    let e = compiled.get(key)
    if (e === undefined) compiled.set(key, e = PayloadSchemaRegistry.compile('t', '#', schema))
    return e
  }
  for (let i = 0; i < 3000; i++) {
    const s = Array.from({ length: g.int(0, 8) }, () => g.pick(units)).join('')
    const text = serialize(g, s, { ws: false, escapes: g.chance(0.5), numbers: false })
    const b = bytesOf(text)
    const schemas: Array<Record<string, unknown>> = [{ maxLength: g.int(0, 8) }, { minLength: g.int(0, 8) }, { pattern: '^.*$' }, { pattern: '^\\p{L}{2}' }]
    if (i % 10 === 0) schemas.push({ const: s }, { enum: ['zz', s] })
    for (const schema of schemas) {
      const e = entry(schema)
      const want = fullWith(e.validate, b)
      const got = e.fast?.accept(b)
      if (got === true) assert.equal(want, true, `UNSOUND seed ${seed}: ${JSON.stringify(schema)} ${text}`)
      assert.equal(got, want, `seed ${seed}: ${JSON.stringify(schema)} ${text}`)
    }
  }
})
