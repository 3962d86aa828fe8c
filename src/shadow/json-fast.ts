/**
 * A schema-directed JSON validator that works on the payload bytes: an ACCELERATOR for the payload-schema hot path
 * (issue #6), never a judge. `JSON.parse` builds every value of a payload only for Ajv to look at a few of them;
 * this walks the UTF-8 bytes once, checks the JSON grammar (RFC 8259, exactly what `JSON.parse` accepts) and the
 * schema's keywords as it goes, and builds nothing but the few strings and numbers a keyword needs.
 *
 * Contract: `true` means the payload is well-formed JSON AND Ajv (draft-07, the options of payload-schemas.ts) would
 * accept what `JSON.parse` makes of it. `false` means "not sure": the caller runs the full path (JSON.parse + Ajv),
 * which decides and explains. So only soundness matters here (true ⇒ Ajv true), and wherever Ajv's semantics are
 * subtle the code answers false. A schema that uses anything outside {@link KEYWORDS} compiles to `undefined`.
 *
 * Ajv semantics mirrored (Ajv 8, draft-07): keywords apply only to their type (`minimum` ignores strings);
 * `number` and `integer` require finite values and `integer` is Number.isInteger of the parsed value (`1.0`, `1e2`);
 * lengths count code points as Ajv's ucs2length (a surrogate pair is one); `pattern` is `new RegExp(p, 'u').test`;
 * `enum`/`const` compare primitives with `===`; duplicate keys: JSON.parse keeps the last value, and every
 * occurrence is validated here; min/maxProperties count distinct keys (Object.keys). Ajv tests `data[prop] !==
 * undefined`, so a schema property named like an Object.prototype member (`toString`, `__proto__`, …) sees the
 * inherited value when absent: such schemas are not compiled.
 */
import { isUtf8 } from 'node:buffer'

/** A compiled accelerator for one schema. */
export interface FastValidator {
  /** true ⇒ the bytes are UTF-8 JSON that the schema accepts; false ⇒ not sure (run the full path). */
  readonly accept: (bytes: Uint8Array) => boolean
  /** {@link accept} for bytes the caller has already checked with `isUtf8` (one check for several schemas). */
  readonly acceptUtf8: (bytes: Uint8Array) => boolean
}

// ---- byte classes ----------------------------------------------------------------------------------------

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const LBRACE = 0x7b
const RBRACE = 0x7d
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const MINUS = 0x2d
const DOT = 0x2e

/** Bytes that end the plain run of a string: `"`, `\` and the control characters JSON forbids raw (RFC 8259 §7). */
const STRING_STOP = new Uint8Array(256)
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1
STRING_STOP[QUOTE] = 1
STRING_STOP[BACKSLASH] = 1
/** The single-character escapes: \" \\ \/ \b \f \n \r \t (\u is handled apart). */
const SIMPLE_ESCAPE = new Uint8Array(256)
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1
const HEX = new Uint8Array(256)
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1

/** Exact powers of ten (10^22 is the largest exactly representable one): Clinger's fast path. */
const POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

// Secondary results of the scanners, read right after the call (synchronous, never re-entered).
let gEscaped = false
let gNumber = 0
let gClosed = false

const sliceProto = Buffer.prototype as unknown as { utf8Slice: (this: Uint8Array, s: number, e: number) => string, latin1Slice: (this: Uint8Array, s: number, e: number) => string }
const utf8Text = (b: Uint8Array, s: number, e: number): string => sliceProto.utf8Slice.call(b, s, e)
const latin1Text = (b: Uint8Array, s: number, e: number): string => sliceProto.latin1Slice.call(b, s, e)

// ---- compiled schema nodes -------------------------------------------------------------------------------

const T_OBJECT = 1
const T_ARRAY = 2
const T_STRING = 4
const T_NUMBER = 8
const T_INTEGER = 16
const T_BOOLEAN = 32
const T_NULL = 64
const T_ALL = 127
const TYPE_BITS: ReadonlyMap<string, number> = new Map([
  ['object', T_OBJECT], ['array', T_ARRAY], ['string', T_STRING], ['number', T_NUMBER], ['integer', T_INTEGER], ['boolean', T_BOOLEAN], ['null', T_NULL],
])

/** Unknown keys remembered per object to count distinct keys exactly (min/maxProperties); more → answer false. */
const UNKNOWN_KEYS_CAP = 64
/** …and at most this many bytes of them (the exact count compares them pairwise). */
const UNKNOWN_KEY_BYTES_CAP = 4096
/** Deepest schema compiled (validation recursion follows schema depth only). */
const MAX_SCHEMA_DEPTH = 64

/** The primitive values of one `enum` (or a `const`); every set on a node must contain the value. */
class EnumSet {
  /** UTF-8 of the well-formed strings, compared with unescaped string tokens byte for byte. */
  readonly stringBytes: Uint8Array[] = []
  readonly strings = new Set<string>()
  readonly numbers: number[] = []
  hasTrue = false
  hasFalse = false
  hasNull = false
}

/** One compiled (sub)schema. A single class with every field, so the validator's property loads stay monomorphic. */
class Node {
  /** JSON types accepted (bits); `false` has none. */
  types = T_ALL
  enums: EnumSet[] = []
  // numbers
  numValue = false
  minimum = -Infinity
  maximum = Infinity
  exclusiveMinimum = -Infinity
  exclusiveMaximum = Infinity
  // strings
  strCheck = false
  strLen = false
  minLength = 0
  maxLength = Infinity
  pattern: RegExp | null = null
  // objects: the names of `properties` and `required`, each with the schema its value must satisfy
  objCheck = false
  keyBytes: Uint8Array[] = []
  keyNodes: Node[] = []
  keyRequired = new Uint8Array(0)
  /** 1 when the name's UTF-8 has no `"`, `\` or control character (see matchGuess). */
  keyPlain = new Uint8Array(0)
  keyMap = new Map<string, number>()
  table = new Int32Array(0)
  hashes = new Int32Array(0)
  mask = 0
  requiredCount = 0
  /** The schema of keys not in `properties` (ANY when absent, NEVER for `false`). */
  additional: Node = this
  countProps = false
  minProperties = 0
  maxProperties = Infinity
  /** Per-call "seen" marker of each key: `seen[i] === gen` (no allocation per object). */
  seen = new Int32Array(0)
  gen = 0
  unknownKeys = new Int32Array(0)
  // arrays
  arrCheck = false
  items: Node = this
  minItems = 0
  maxItems = Infinity
}

/** `true` and `{}`: the grammar only. */
const ANY = new Node()
ANY.additional = ANY
ANY.items = ANY
/** `false`: nothing. */
const NEVER = new Node()
NEVER.types = 0
NEVER.additional = NEVER
NEVER.items = NEVER

/** What the keyword compilers gather before a node is finished (properties, required, additionalProperties interact). */
interface Draft {
  readonly node: Node
  readonly depth: number
  readonly root: boolean
  properties: Map<string, Node> | undefined
  required: string[] | undefined
  additional: Node | undefined
}

const isNonNegInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function enumSet (values: readonly unknown[]): EnumSet | undefined {
  const set = new EnumSet()
  for (const v of values) {
    if (typeof v === 'string') {
      set.strings.add(v)
      // A lone surrogate has no UTF-8 form: only an escaped token can equal it, and those are decoded.
      if (v.isWellFormed()) set.stringBytes.push(Buffer.from(v, 'utf8'))
    } else if (isFiniteNumber(v)) set.numbers.push(v)
    else if (v === true) set.hasTrue = true
    else if (v === false) set.hasFalse = true
    else if (v === null) set.hasNull = true
    else return undefined
  }
  return set
}

/** A keyword compiler: records the keyword's effect on the draft; false = unsupported value (whole schema refused). */
type KeywordCompiler = (d: Draft, value: unknown) => boolean

const annotation: KeywordCompiler = () => true
const limit = (set: (n: Node, v: number) => void, valid: (v: unknown) => v is number): KeywordCompiler => (d, v) => {
  if (!valid(v)) return false
  set(d.node, v)
  return true
}

/**
 * THE supported subset: each keyword Ajv 8 applies in draft-07, with what it does here. Everything else (`$ref`,
 * `allOf`, `anyOf`, `oneOf`, `not`, `if`, `format`, `multipleOf`, `patternProperties`, `dependencies`,
 * `propertyNames`, `contains`, `uniqueItems`, tuple `items`, `definitions`, …) makes the schema unsupported.
 */
const KEYWORDS: ReadonlyMap<string, KeywordCompiler> = new Map<string, KeywordCompiler>([
  // Annotations: no effect on validation (no useDefaults). `$schema` (draft-07 only) and `$id` only at the root.
  ['$schema', (d, v) => d.root && (v === 'http://json-schema.org/draft-07/schema#' || v === 'http://json-schema.org/draft-07/schema')],
  ['$id', (d, v) => d.root && typeof v === 'string'],
  ['title', annotation],
  ['description', annotation],
  ['$comment', annotation],
  ['default', annotation],
  ['examples', annotation],
  // Any type.
  ['type', (d, v) => {
    const names = typeof v === 'string' ? [v] : Array.isArray(v) ? v : []
    if (names.length === 0) return false
    let bits = 0
    for (const name of names) {
      const bit = typeof name === 'string' ? TYPE_BITS.get(name) : undefined
      if (bit === undefined) return false
      bits |= bit
    }
    d.node.types = bits
    return true
  }],
  ['enum', (d, v) => {
    const set = Array.isArray(v) ? enumSet(v) : undefined
    if (set === undefined) return false
    d.node.enums.push(set)
    return true
  }],
  ['const', (d, v) => {
    const set = enumSet([v])
    if (set === undefined) return false
    d.node.enums.push(set)
    return true
  }],
  // Numbers (finite limits; draft-07 exclusive* are numbers).
  ['minimum', limit((n, v) => { n.minimum = v }, isFiniteNumber)],
  ['maximum', limit((n, v) => { n.maximum = v }, isFiniteNumber)],
  ['exclusiveMinimum', limit((n, v) => { n.exclusiveMinimum = v }, isFiniteNumber)],
  ['exclusiveMaximum', limit((n, v) => { n.exclusiveMaximum = v }, isFiniteNumber)],
  // Strings.
  ['minLength', limit((n, v) => { n.minLength = v }, isNonNegInt)],
  ['maxLength', limit((n, v) => { n.maxLength = v }, isNonNegInt)],
  ['pattern', (d, v) => {
    if (typeof v !== 'string') return false
    d.node.pattern = new RegExp(v, 'u') // as Ajv (unicodeRegExp: true); throws on a bad pattern → unsupported
    return true
  }],
  // Objects.
  ['properties', (d, v) => {
    if (!isObject(v)) return false
    const props = new Map<string, Node>()
    for (const name of Object.keys(v)) {
      // Ajv tests `data[name] !== undefined`, which sees Object.prototype when the key is absent.
      if (name in Object.prototype || !name.isWellFormed()) return false
      const child = compileNode(v[name], d.depth + 1)
      if (child === undefined) return false
      props.set(name, child)
    }
    d.properties = props
    return true
  }],
  ['required', (d, v) => {
    if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string' && x.isWellFormed())) return false
    d.required = v
    return true
  }],
  ['additionalProperties', (d, v) => {
    const child = compileNode(v, d.depth + 1)
    if (child === undefined) return false
    d.additional = child
    return true
  }],
  ['minProperties', limit((n, v) => { n.minProperties = v; n.countProps = true }, isNonNegInt)],
  ['maxProperties', limit((n, v) => { n.maxProperties = v; n.countProps = true }, isNonNegInt)],
  // Arrays (a single `items` schema only).
  ['items', (d, v) => {
    if (Array.isArray(v)) return false
    const child = compileNode(v, d.depth + 1)
    if (child === undefined) return false
    d.node.items = child
    return true
  }],
  ['minItems', limit((n, v) => { n.minItems = v }, isNonNegInt)],
  ['maxItems', limit((n, v) => { n.maxItems = v }, isNonNegInt)],
])

const FNV_OFFSET = 0x811c9dc5 | 0
const FNV_PRIME = 0x01000193

function hashBytes (b: Uint8Array, s: number, e: number): number {
  let h = FNV_OFFSET
  for (let j = s; j < e; j++) h = Math.imul(h ^ b[j], FNV_PRIME)
  return h
}

/** Builds the key table of an object schema: names of `properties` and `required`, hashed (open addressing). */
function finishObject (d: Draft): void {
  const n = d.node
  const additional = d.additional ?? ANY
  const names = new Map<string, Node>(d.properties)
  // A required name outside `properties` is still an additional property for additionalProperties.
  for (const r of d.required ?? []) if (!names.has(r)) names.set(r, additional)
  const required = new Set(d.required)
  const count = names.size
  let size = 2
  while (size < count * 2) size *= 2
  n.table = new Int32Array(size)
  n.mask = size - 1
  n.hashes = new Int32Array(count)
  n.keyRequired = new Uint8Array(count)
  n.keyPlain = new Uint8Array(count)
  n.seen = new Int32Array(count)
  let i = 0
  for (const [name, child] of names) {
    const bytes = Buffer.from(name, 'utf8')
    n.keyBytes.push(bytes)
    n.keyNodes.push(child)
    n.keyMap.set(name, i)
    if (required.has(name)) n.keyRequired[i] = 1
    if (bytes.every(c => STRING_STOP[c] === 0)) n.keyPlain[i] = 1
    const h = hashBytes(bytes, 0, bytes.length)
    n.hashes[i] = h
    let slot = h & n.mask
    while (n.table[slot] !== 0) slot = (slot + 1) & n.mask
    n.table[slot] = i + 1
    i++
  }
  n.requiredCount = required.size
  n.additional = additional
  if (n.countProps) n.unknownKeys = new Int32Array(UNKNOWN_KEYS_CAP * 2)
  n.objCheck = count > 0 || additional !== ANY || n.countProps
}

/** Compiles a (sub)schema; undefined when anything in it is outside the supported subset. */
function compileNode (schema: unknown, depth: number): Node | undefined {
  if (schema === true) return ANY
  if (schema === false) return NEVER
  if (!isObject(schema) || depth > MAX_SCHEMA_DEPTH) return undefined
  const node = new Node()
  node.additional = ANY
  node.items = ANY
  const d: Draft = { node, depth, root: depth === 0, properties: undefined, required: undefined, additional: undefined }
  for (const key of Object.keys(schema)) {
    const kw = KEYWORDS.get(key)
    if (kw === undefined || !kw(d, schema[key])) return undefined
  }
  finishObject(d)
  node.numValue = node.enums.length > 0 || node.minimum !== -Infinity || node.maximum !== Infinity ||
    node.exclusiveMinimum !== -Infinity || node.exclusiveMaximum !== Infinity
  node.strLen = node.minLength > 0 || node.maxLength !== Infinity
  node.strCheck = node.strLen || node.pattern !== null || node.enums.length > 0
  node.arrCheck = node.items !== ANY || node.minItems > 0 || node.maxItems !== Infinity
  if (node.types === T_ALL && !node.numValue && !node.strCheck && !node.objCheck && !node.arrCheck) return ANY
  return node
}

/**
 * Compiles the accelerator for a schema that Ajv has already compiled, or returns undefined when the schema uses
 * anything outside the supported subset (then Ajv alone validates). Never throws.
 */
export function compileFastAccept (schema: unknown): FastValidator | undefined {
  let root: Node | undefined
  try {
    root = compileNode(schema, 0)
  } catch {
    return undefined
  }
  if (root === undefined) return undefined
  const top = root
  const acceptUtf8 = (bytes: Uint8Array): boolean => {
    try {
      const n = bytes.length
      const i = skipWs(bytes, 0, n)
      if (i >= n) return false
      const e = validate(top, bytes, i, n)
      return e >= 0 && skipWs(bytes, e, n) === n
    } catch {
      return false
    } finally {
      gWords = NO_WORDS
      gWordsOf = null
      gQuoteAt = -1
      if (containers.length > CONTAINERS_KEPT) containers = new Uint8Array(CONTAINERS_KEPT)
    }
  }
  return { accept: bytes => isUtf8(bytes) && acceptUtf8(bytes), acceptUtf8 }
}

// ---- scanners (grammar only) -----------------------------------------------------------------------------

/** JSON whitespace is space, \t, \n, \r only (RFC 8259 §2; a BOM is not). */
function skipWs (b: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = b[i]
    if (c > 0x20 || (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09)) break
    i++
  }
  return i
}

/** A run longer than this inside a string is scanned a 32-bit word at a time. */
const SHORT_RUN = 16
const NO_WORDS: Int32Array<ArrayBufferLike> = new Int32Array(0)
// The payload as aligned 32-bit words, made once per call when a long string needs it (reset after each call).
let gWords = NO_WORDS
let gWordsOf: Uint8Array | null = null
/** Index in the payload of gWords[0]. */
let gWordsAt = 0
/** The first `"` at or after every position skipRun has searched from in this call (n: none); -1 before any. */
let gQuoteAt = -1

/** Native memchr: Buffer's indexOf of a byte (works on any Uint8Array). */
const indexOfByte = Buffer.prototype.indexOf as (this: Uint8Array, value: number, byteOffset: number) => number

/** Words checked between two looks at the flags: a run is never scanned twice (linear time with many escapes). */
const WORDS_PER_CHUNK = 8

/**
 * From b[j] inside a string, skips bytes that are not `"`, `\` or < 0x20, and returns a position at or before the
 * first such byte; the caller finishes byte by byte. The next quote is found natively (memchr, remembered for the
 * rest of the call); the bytes before it are checked a 32-bit word at a time (SWAR: a byte of x is zero iff
 * `(x - 0x01010101) & ~x & 0x80808080` flags it; `\` is made zero by XOR with 0x5c5c5c5c, `< 0x20` is flagged by
 * subtracting 0x20202020, and `~w` drops the bytes ≥ 0x80, whose top bit is set in w and in w ^ 0x5c5c5c5c). The
 * flags say exactly whether some byte of a chunk is such a byte, not where: the caller rescans that chunk.
 */
function skipRun (b: Uint8Array, j: number, n: number): number {
  const off = b.byteOffset
  while (j < n && ((off + j) & 3) !== 0) {
    if (STRING_STOP[b[j]] !== 0) return j
    j++
  }
  if (gWordsOf !== b) {
    const start = (off + 3) & ~3
    const end = (off + n) & ~3
    gWords = end > start ? new Int32Array(b.buffer, start, (end - start) >> 2) : NO_WORDS
    gWordsAt = start - off
    gWordsOf = b
  }
  if (gQuoteAt < j) {
    const q = indexOfByte.call(b, QUOTE, j)
    gQuoteAt = q < 0 || q > n ? n : q
  }
  const words = gWords
  const kStop = Math.min((gQuoteAt - gWordsAt) >> 2, words.length)
  let k = (j - gWordsAt) >> 2
  while (k < kStop) {
    const end = k + WORDS_PER_CHUNK < kStop ? k + WORDS_PER_CHUNK : kStop
    let flags = 0
    for (let x = k; x < end; x++) {
      const w = words[x]
      flags |= (((w ^ 0x5c5c5c5c) - 0x01010101) | (w - 0x20202020)) & ~w
    }
    if ((flags & 0x80808080) !== 0) break
    k = end
  }
  return k > (j - gWordsAt) >> 2 ? gWordsAt + (k << 2) : j
}

/** b[i] is `"`: returns the index after the closing quote, or -1; sets gEscaped. The bytes are valid UTF-8. */
function scanString (b: Uint8Array, i: number, n: number): number {
  let j = i + 1
  let escaped = false
  for (;;) {
    const lim = j + SHORT_RUN < n ? j + SHORT_RUN : n
    while (j < lim && STRING_STOP[b[j]] === 0) j++
    if (j === lim) {
      if (j >= n) return -1
      j = skipRun(b, j, n)
      while (j < n && STRING_STOP[b[j]] === 0) j++
      if (j >= n) return -1
    }
    const c = b[j]
    if (c === QUOTE) {
      gEscaped = escaped
      return j + 1
    }
    if (c !== BACKSLASH || j + 1 >= n) return -1 // a raw control character, or a cut escape
    escaped = true
    const d = b[j + 1]
    if (d === 0x75) { // \uXXXX
      if (j + 5 >= n || HEX[b[j + 2]] === 0 || HEX[b[j + 3]] === 0 || HEX[b[j + 4]] === 0 || HEX[b[j + 5]] === 0) return -1
      j += 6
    } else if (SIMPLE_ESCAPE[d] === 1) {
      j += 2
    } else {
      return -1
    }
  }
}

/**
 * RFC 8259 §6 `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?` at b[i]: returns the end, or -1. The caller checks what
 * follows (a delimiter), which rejects `01`.
 */
function scanNumber (b: Uint8Array, i: number, n: number): number {
  let j = i
  if (b[j] === MINUS) j++
  if (j >= n) return -1
  let c = b[j++]
  if (c >= 0x31 && c <= 0x39) {
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) j++
  } else if (c !== 0x30) return -1
  if (j < n && b[j] === DOT) {
    const s = ++j
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) j++
    if (j === s) return -1
  }
  if (j < n && (b[j] | 0x20) === 0x65) {
    j++
    if (j < n && (b[j] === 0x2b || b[j] === MINUS)) j++
    const s = j
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) j++
    if (j === s) return -1
  }
  return j
}

function scanLiteral (b: Uint8Array, i: number, n: number): number {
  const c = b[i]
  if (c === 0x74) return i + 3 < n && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65 ? i + 4 : -1 // true
  if (c === 0x66) return i + 4 < n && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65 ? i + 5 : -1 // false
  if (c === 0x6e) return i + 3 < n && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c ? i + 4 : -1 // null
  return -1
}

function skipScalar (b: Uint8Array, i: number, n: number): number {
  const c = b[i]
  if (c === QUOTE) return scanString(b, i, n)
  if (c === MINUS || (c >= 0x30 && c <= 0x39)) return scanNumber(b, i, n)
  return scanLiteral(b, i, n)
}

/** At a key's opening quote: returns the index of its value (after `:` and whitespace), or -1. */
function skipKey (b: Uint8Array, i: number, n: number): number {
  if (i >= n || b[i] !== QUOTE || (i = scanString(b, i, n)) < 0) return -1
  i = skipWs(b, i, n)
  if (i >= n || b[i] !== COLON) return -1
  return skipWs(b, i + 1, n)
}

/** Nesting kept between calls by {@link skipValue}'s stack (a deeper payload grows it for one call). */
const CONTAINERS_KEPT = 256
/** Open containers of {@link skipValue}: 1 object, 0 array. Shared: the skipper is never re-entered. */
let containers = new Uint8Array(CONTAINERS_KEPT)

/**
 * Checks the grammar of any value at b[i] (i after whitespace) and returns its end, or -1. Iterative with an
 * explicit stack, so `[[[[…]]]]` nested 100,000 deep (which JSON.parse accepts) cannot overflow the call stack.
 */
function skipValue (b: Uint8Array, i: number, n: number): number {
  if (i >= n) return -1
  let c = b[i]
  if (c !== LBRACE && c !== LBRACKET) return skipScalar(b, i, n)
  let depth = 0
  let inObject = false
  for (;;) {
    // A value starts at i (i < n).
    c = b[i]
    if (c === QUOTE) i = scanString(b, i, n)
    else if (c === MINUS || (c >= 0x30 && c <= 0x39)) i = scanNumber(b, i, n)
    else if (c === LBRACE || c === LBRACKET) {
      if (depth === containers.length) {
        const grown = new Uint8Array(containers.length * 2)
        grown.set(containers)
        containers = grown
      }
      inObject = c === LBRACE
      containers[depth++] = inObject ? 1 : 0
      i = skipWs(b, i + 1, n)
      if (i >= n) return -1
      if (b[i] !== (inObject ? RBRACE : RBRACKET)) {
        if (inObject && (i = skipKey(b, i, n)) < 0) return -1
        if (i >= n) return -1
        continue
      }
      // An empty container: a complete value.
      depth--
      inObject = depth > 0 && containers[depth - 1] === 1
      i++
    } else i = scanLiteral(b, i, n)
    if (i < 0) return -1
    // A value ended at i: a separator or closers follow.
    for (;;) {
      if (depth === 0) return i
      if (i < n && b[i] <= 0x20) i = skipWs(b, i, n)
      if (i >= n) return -1
      c = b[i++]
      if (c === COMMA) {
        if (i < n && b[i] <= 0x20) i = skipWs(b, i, n)
        if (inObject && (i = skipKey(b, i, n)) < 0) return -1
        if (i >= n) return -1
        break
      }
      if (c !== (inObject ? RBRACE : RBRACKET)) return -1
      depth--
      inObject = depth > 0 && containers[depth - 1] === 1
    }
  }
}

// ---- values ----------------------------------------------------------------------------------------------

/**
 * Scans a number at b[i] (the grammar of {@link scanNumber}) and computes, into gNumber, the value JSON.parse gives:
 * Clinger's fast path (≤ 15 significant digits, so the integer m < 2^53 is exact, and 10^|k| ≤ 10^22 is exact, so
 * m * 10^k or m / 10^-k is one correctly rounded operation), else the engine's correctly rounded conversion of the
 * token. Returns the end, or -1.
 */
function scanNumberValue (b: Uint8Array, i: number, n: number): number {
  let j = i
  const neg = b[j] === MINUS
  if (neg) j++
  if (j >= n) return -1
  let c = b[j++]
  let m = c - 0x30
  let sig = m === 0 ? 0 : 1
  let frac = 0
  if (c >= 0x31 && c <= 0x39) {
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) {
      m = m * 10 + (c - 0x30)
      sig++
      j++
    }
  } else if (c !== 0x30) return -1
  if (j < n && b[j] === DOT) {
    const s = ++j
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) {
      if (m !== 0 || c !== 0x30) { m = m * 10 + (c - 0x30); sig++ }
      frac++
      j++
    }
    if (j === s) return -1
  }
  let exp = 0
  if (j < n && (b[j] | 0x20) === 0x65) {
    j++
    const expNeg = j < n && b[j] === MINUS
    if (j < n && (expNeg || b[j] === 0x2b)) j++
    const s = j
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) {
      if (exp < 100_000) exp = exp * 10 + (c - 0x30)
      j++
    }
    if (j === s) return -1
    if (expNeg) exp = -exp
  }
  const k = exp - frac
  if (m === 0) gNumber = neg ? -0 : 0
  else if (sig > 15 || k > 22 || k < -22) gNumber = Number(latin1Text(b, i, j))
  else {
    const v = k >= 0 ? m * POW10[k] : m / POW10[-k]
    gNumber = neg ? -v : v
  }
  return j
}

/** Ajv's ucs2length: code points, a surrogate pair counting one. */
function ucs2length (str: string): number {
  let len = 0
  for (let p = 0; p < str.length; len++) {
    const v = str.charCodeAt(p++)
    if (v >= 0xd800 && v <= 0xdbff && p < str.length && (str.charCodeAt(p) & 0xfc00) === 0xdc00) p++
  }
  return len
}

function bytesEqual (k: Uint8Array, b: Uint8Array, s: number, len: number): boolean {
  if (k.length !== len) return false
  for (let x = 0; x < len; x++) if (k[x] !== b[s + x]) return false
  return true
}

function enumHasString (set: EnumSet, b: Uint8Array, s: number, e: number, str: string | null): boolean {
  if (str !== null) return set.strings.has(str)
  const list = set.stringBytes
  for (let x = 0; x < list.length; x++) if (bytesEqual(list[x], b, s, e - s)) return true
  return false
}

function enumHasNumber (set: EnumSet, v: number): boolean {
  const list = set.numbers
  for (let x = 0; x < list.length; x++) if (list[x] === v) return true
  return false
}

// ---- validation ------------------------------------------------------------------------------------------

/**
 * Validates the value at b[i] (after whitespace) against a node: its end, or -1 for "not sure". Small, so that
 * it is inlined into the object and array loops; `false` has no types, `true` checks the grammar only.
 */
function validate (node: Node, b: Uint8Array, i: number, n: number): number {
  if (i >= n) return -1
  const c = b[i]
  if (c === QUOTE) return (node.types & T_STRING) === 0 ? -1 : node.strCheck ? validateString(node, b, i, n) : scanString(b, i, n)
  if (c === MINUS || (c >= 0x30 && c <= 0x39)) return (node.types & (T_NUMBER | T_INTEGER)) === 0 ? -1 : validateNumber(node, b, i, n)
  return validateOther(node, b, i, n, c)
}

function validateOther (node: Node, b: Uint8Array, i: number, n: number, c: number): number {
  if (c === LBRACE) {
    if ((node.types & T_OBJECT) === 0 || node.enums.length > 0) return -1
    return node.objCheck ? validateObject(node, b, i, n) : skipValue(b, i, n)
  }
  if (c === LBRACKET) {
    if ((node.types & T_ARRAY) === 0 || node.enums.length > 0) return -1
    return node.arrCheck ? validateArray(node, b, i, n) : skipValue(b, i, n)
  }
  const e = scanLiteral(b, i, n)
  if (e < 0) return -1
  const enums = node.enums
  if (c === 0x6e) {
    if ((node.types & T_NULL) === 0) return -1
    for (let x = 0; x < enums.length; x++) if (!enums[x].hasNull) return -1
  } else {
    if ((node.types & T_BOOLEAN) === 0) return -1
    for (let x = 0; x < enums.length; x++) if (!(c === 0x74 ? enums[x].hasTrue : enums[x].hasFalse)) return -1
  }
  return e
}

function validateString (node: Node, b: Uint8Array, i: number, n: number): number {
  const e = scanString(b, i, n)
  if (e < 0) return -1
  const s = i + 1
  const end = e - 1
  // Decoded only when a keyword needs it; with escapes, JSON.parse of the token is the exact decoder.
  let str: string | null = gEscaped ? JSON.parse(utf8Text(b, i, e)) as string : null
  if (node.strLen) {
    let len = 0
    if (str !== null) len = ucs2length(str)
    else {
      // Valid UTF-8 without escapes: one code point per byte that is not a continuation byte (10xxxxxx), and a
      // 4-byte sequence is one surrogate pair, one for ucs2length. Bytes bound it: bytes/4 ≤ length ≤ bytes.
      const bytes = end - s
      if (bytes <= node.maxLength && bytes >= node.minLength * 4) len = node.minLength
      else for (let x = s; x < end; x++) if ((b[x] & 0xc0) !== 0x80) len++
    }
    if (len < node.minLength || len > node.maxLength) return -1
  }
  if (node.pattern !== null) {
    if (str === null) str = utf8Text(b, s, end)
    if (!node.pattern.test(str)) return -1
  }
  const enums = node.enums
  for (let x = 0; x < enums.length; x++) if (!enumHasString(enums[x], b, s, end, str)) return -1
  return e
}

/**
 * The common number: no exponent and at most 308 integer digits (below 1.8e308, so finite as Ajv's number and
 * integer require), with a fraction only when `fraction`. Its end, or -2 for anything else (malformed included):
 * the caller then takes the general path.
 */
function scanPlainNumber (b: Uint8Array, i: number, n: number, fraction: boolean): number {
  let j = i
  let c = b[j]
  if (c === MINUS) {
    if (++j >= n) return -2
    c = b[j]
  }
  const first = j++
  if (c >= 0x31 && c <= 0x39) {
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) j++
    if (j - first > 308) return -2
  } else if (c !== 0x30) return -2
  if (j < n && b[j] === DOT) {
    if (!fraction) return -2
    const s = ++j
    while (j < n && (c = b[j]) >= 0x30 && c <= 0x39) j++
    if (j === s) return -2
  }
  return j < n && (b[j] | 0x20) === 0x65 ? -2 : j
}

/** Checks a number; its exact value is computed only when a keyword (or an exponent) needs it. */
function validateNumber (node: Node, b: Uint8Array, i: number, n: number): number {
  const numberOk = (node.types & T_NUMBER) !== 0
  if (!node.numValue) {
    const e = scanPlainNumber(b, i, n, numberOk)
    if (e !== -2) return e
  }
  const e = scanNumberValue(b, i, n)
  return e >= 0 && numberValueOk(node, gNumber, numberOk) ? e : -1
}

/** The checks that need the number's exact value (apart, so that {@link validateNumber} stays small enough to inline). */
function numberValueOk (node: Node, v: number, numberOk: boolean): boolean {
  if (!Number.isFinite(v)) return false
  if (!numberOk && !Number.isInteger(v)) return false
  if (v < node.minimum || v > node.maximum || v <= node.exclusiveMinimum || v >= node.exclusiveMaximum) return false
  const enums = node.enums
  for (let x = 0; x < enums.length; x++) if (!enumHasNumber(enums[x], v)) return false
  return true
}

/**
 * The key at b[j] (its opening quote) when it is `guess`, the schema's next property (payloads mostly follow the
 * schema's order): the index after its closing quote, else -1. Only for names whose UTF-8 has no `"`, `\` or
 * control character, so matching bytes followed by `"` are exactly that key, unescaped.
 */
function matchGuess (node: Node, b: Uint8Array, j: number, n: number, guess: number): number {
  if (guess >= node.keyPlain.length || node.keyPlain[guess] === 0) return -1
  const k = node.keyBytes[guess]
  const len = k.length
  const s = j + 1
  if (s + len >= n || b[s + len] !== QUOTE) return -1
  for (let x = 0; x < len; x++) if (b[s + x] !== k[x]) return -1
  return s + len + 1
}

/** The key table index of the key token b[ks, ke) (quotes included), or -1 for a key outside it. */
function lookupKey (node: Node, b: Uint8Array, ks: number, ke: number, escaped: boolean): number {
  // JSON.parse decodes escaped keys: `"\u0061"` is the key `a`.
  if (escaped) return node.keyMap.get(JSON.parse(utf8Text(b, ks, ke)) as string) ?? -1
  const s = ks + 1
  const e = ke - 1
  const len = e - s
  const h = hashBytes(b, s, e)
  const keys = node.keyBytes
  const table = node.table
  const mask = node.mask
  for (let slot = h & mask; ; slot = (slot + 1) & mask) {
    const v = table[slot]
    if (v === 0) return -1
    if (node.hashes[v - 1] === h && bytesEqual(keys[v - 1], b, s, len)) return v - 1
  }
}

/** Remembers an unknown key for min/maxProperties; false when it cannot be counted exactly (escaped). */
function noteUnknown (node: Node, ks: number, ke: number, escaped: boolean, unknown: number): boolean {
  if (escaped) return false
  if (unknown < UNKNOWN_KEYS_CAP) {
    node.unknownKeys[unknown * 2] = ks + 1
    node.unknownKeys[unknown * 2 + 1] = ke - 1
  }
  return true
}

function nextGeneration (node: Node): number {
  let gen = node.gen + 1
  if (gen === 0x7fffffff) {
    node.seen.fill(0)
    gen = 1
  }
  node.gen = gen
  return gen
}

function validateObject (node: Node, b: Uint8Array, i: number, n: number): number {
  const gen = nextGeneration(node)
  const seen = node.seen
  let required = 0
  let known = 0
  let unknown = 0
  let guess = 0
  let j = skipWs(b, i + 1, n)
  if (j >= n) return -1
  if (b[j] === RBRACE) j++
  else {
    for (;;) {
      if (j >= n || b[j] !== QUOTE) return -1
      let idx = guess
      let ke = matchGuess(node, b, j, n, guess)
      if (ke < 0) {
        if ((ke = scanString(b, j, n)) < 0) return -1
        const escaped = gEscaped
        idx = lookupKey(node, b, j, ke, escaped)
        if (idx < 0 && node.countProps && !noteUnknown(node, j, ke, escaped, unknown)) return -1
      }
      j = ke
      if (j < n && b[j] <= 0x20) j = skipWs(b, j, n)
      if (j >= n || b[j] !== COLON) return -1
      if (++j < n && b[j] <= 0x20) j = skipWs(b, j, n)
      if (idx >= 0) {
        guess = idx + 1
        if (seen[idx] !== gen) {
          seen[idx] = gen
          known++
          required += node.keyRequired[idx]
        }
        // Every occurrence of a duplicate key is validated, so the one JSON.parse keeps (the last) is too.
        j = validate(node.keyNodes[idx], b, j, n)
      } else {
        unknown++
        j = validate(node.additional, b, j, n)
      }
      if (j < 0 || (j = separator(b, j, n, RBRACE)) < 0) return -1
      if (gClosed) break
    }
  }
  if (required !== node.requiredCount) return -1
  if (node.countProps && !propertyCountOk(node, b, known, unknown)) return -1
  return j
}

/**
 * After a member or an element: whitespace, then `,` (and the whitespace after it) or the container's closing
 * byte, which sets {@link gClosed}. Returns the index after them, or -1 for anything else.
 */
function separator (b: Uint8Array, i: number, n: number, close: number): number {
  let j = i
  if (j < n && b[j] <= 0x20) j = skipWs(b, j, n)
  if (j >= n) return -1
  const c = b[j++]
  if (c === COMMA) {
    gClosed = false
    return j < n && b[j] <= 0x20 ? skipWs(b, j, n) : j
  }
  if (c !== close) return -1
  gClosed = true
  return j
}

/** min/maxProperties against Object.keys(data).length: distinct keys (a duplicate counts once). */
function propertyCountOk (node: Node, b: Uint8Array, known: number, unknown: number): boolean {
  const lo = known + (unknown > 0 ? 1 : 0)
  const hi = known + unknown
  if (hi < node.minProperties || lo > node.maxProperties) return false
  if (lo >= node.minProperties && hi <= node.maxProperties) return true
  if (unknown > UNKNOWN_KEYS_CAP) return false
  const r = node.unknownKeys
  let bytes = 0
  for (let x = 0; x < unknown; x++) bytes += r[x * 2 + 1] - r[x * 2]
  if (bytes > UNKNOWN_KEY_BYTES_CAP) return false // bounds the quadratic comparison below
  // Distinct unescaped keys are distinct byte strings (UTF-8 is a bijection on well-formed text).
  let distinct = 0
  for (let x = 0; x < unknown; x++) {
    const s = r[x * 2]
    const len = r[x * 2 + 1] - s
    let dup = false
    for (let y = 0; y < x && !dup; y++) {
      const t = r[y * 2]
      if (r[y * 2 + 1] - t !== len) continue
      let z = 0
      while (z < len && b[s + z] === b[t + z]) z++
      dup = z === len
    }
    if (!dup) distinct++
  }
  const count = known + distinct
  return count >= node.minProperties && count <= node.maxProperties
}

function validateArray (node: Node, b: Uint8Array, i: number, n: number): number {
  let j = skipWs(b, i + 1, n)
  if (j >= n) return -1
  let count = 0
  if (b[j] === RBRACKET) j++
  else {
    const items = node.items
    const max = node.maxItems
    // Arrays of plain numbers (sample batches) skip the general dispatch: measurably faster per element.
    const numeric = (items.types & (T_NUMBER | T_INTEGER)) !== 0 && !items.numValue
    const fraction = (items.types & T_NUMBER) !== 0
    for (;;) {
      const at = j
      if (!numeric || (j = scanPlainNumber(b, at, n, fraction)) === -2) j = validate(items, b, at, n)
      if (j < 0 || ++count > max || (j = separator(b, j, n, RBRACKET)) < 0) return -1
      if (gClosed) break
    }
  }
  return count < node.minItems ? -1 : j
}
