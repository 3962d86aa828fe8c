import { MalformedPolicyError } from './errors.ts'

/** A JSON value as the strict parser returns it. Objects have a null prototype, so `__proto__` is just a key. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

const MAX_DEPTH = 32

/** Appends a key to a JSON path: `a.b` for plain keys, `a["x.y"]` for keys with path punctuation. */
export function childPath (base: string, key: string | number): string {
  if (typeof key === 'number') return `${base === '$' ? '' : base}[${key}]`
  const plain = /^[A-Za-z0-9_:/@-]+$/.test(key)
  if (base === '$') return plain ? key : `$[${JSON.stringify(key)}]`
  return plain ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`
}

/**
 * RFC 8259 JSON, strictly: duplicate object keys are an error (JSON.parse would keep the last one, silently
 * dropping e.g. a first `Condition`), nesting is bounded, and errors carry the JSON path and offset.
 */
export function parseJsonStrict (text: string): JsonValue {
  let i = 0
  const n = text.length
  const fail = (path: string): never => { throw new MalformedPolicyError('JSON_SYNTAX', path, { offset: i }) }
  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 32 || c === 9 || c === 10 || c === 13) i++
      else break
    }
  }
  const str = (path: string): string => {
    i++ // opening quote
    let out = ''
    let start = i
    while (true) {
      if (i >= n) fail(path)
      const c = text.charCodeAt(i)
      if (c === 34) { out += text.slice(start, i); i++; return out }
      if (c < 32) fail(path)
      if (c === 92) {
        out += text.slice(start, i)
        const e = text[i + 1]
        if (e === undefined) fail(path)
        i += 2
        switch (e) {
          case '"': out += '"'; break
          case '\\': out += '\\'; break
          case '/': out += '/'; break
          case 'b': out += '\b'; break
          case 'f': out += '\f'; break
          case 'n': out += '\n'; break
          case 'r': out += '\r'; break
          case 't': out += '\t'; break
          case 'u': {
            const hex = text.slice(i, i + 4)
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail(path)
            out += String.fromCharCode(parseInt(hex, 16))
            i += 4
            break
          }
          default: fail(path)
        }
        start = i
        continue
      }
      i++
    }
  }
  const num = (path: string): number => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m === null) fail(path)
    const lexeme = (m as RegExpExecArray)[0]
    i += lexeme.length
    return Number(lexeme)
  }
  const value = (path: string, depth: number): JsonValue => {
    if (depth > MAX_DEPTH) throw new MalformedPolicyError('JSON_TOO_DEEP', path)
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const obj = Object.create(null) as { [key: string]: JsonValue }
      ws()
      if (text[i] === '}') { i++; return obj }
      while (true) {
        ws()
        if (text[i] !== '"') fail(path)
        const key = str(path)
        const kp = childPath(path, key)
        if (Object.hasOwn(obj, key)) throw new MalformedPolicyError('JSON_DUPLICATE_KEY', kp)
        ws()
        if (text[i] !== ':') fail(kp)
        i++
        obj[key] = value(kp, depth + 1)
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i] === '}') { i++; return obj }
        fail(path)
      }
    }
    if (c === '[') {
      i++
      const arr: JsonValue[] = []
      ws()
      if (text[i] === ']') { i++; return arr }
      while (true) {
        arr.push(value(childPath(path, arr.length), depth + 1))
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i] === ']') { i++; return arr }
        fail(path)
      }
    }
    if (c === '"') return str(path)
    if (c === 't' && text.startsWith('true', i)) { i += 4; return true }
    if (c === 'f' && text.startsWith('false', i)) { i += 5; return false }
    if (c === 'n' && text.startsWith('null', i)) { i += 4; return null }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return num(path)
    return fail(path)
  }
  const v = value('$', 0)
  ws()
  if (i !== n) fail('$')
  return v
}
