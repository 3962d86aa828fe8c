/**
 * Wildcard matching for the compiled evaluator, without RegExp and without allocating per match.
 * IAM UG `reference_policies_elements_resource`: `*` matches any run of characters (including none, and across
 * `/`), `?` exactly one character (one UTF-16 code unit here). Text that came from a policy variable or an escape
 * is literal: its `*` and `?` match only themselves.
 */

/** Written by {@link flat} so that the conversion it uses for its side effect is never optimized away. */
let flatSink = 0

/**
 * The string, flattened. Concatenations are ropes in V8, and comparing against a rope character by character on
 * every decision costs several times more than against a flat string; precomputed pattern strings are flattened
 * once at compile time. Converting a string to a number makes V8 flatten it in place (the rope then holds one
 * flat string): about 0.15 µs for an 80-character ARN, against 1.5–2 µs for copying it through split and join,
 * which ran a dozen times or more for every device session compiled.
 */
export function flat (s: string): string {
  if (Number.isNaN(Number(s))) flatSink++
  return s
}

/** A run of pattern text; when `wild` is true, `*` and `?` in it are wildcards. */
export interface GlobPiece {
  readonly text: string
  readonly wild: boolean
}

interface Segment {
  /** Literal text; positions flagged in `q` hold a placeholder and match any one character. */
  readonly text: string
  readonly q: Uint8Array | undefined
  readonly len: number
}

/** A compiled wildcard pattern: literal segments separated by `*`. */
export interface Glob {
  readonly segs: readonly Segment[]
  /** The whole pattern when it has no wildcard at all. */
  readonly exact: string | undefined
  /** The literal text before the first wildcard: every match starts with it. */
  readonly prefix: string
  readonly minLen: number
}

function makeSegment (text: string, q: number[]): Segment {
  let mask: Uint8Array | undefined
  if (q.length > 0) {
    mask = new Uint8Array(text.length)
    for (const k of q) mask[k] = 1
  }
  return { text, q: mask, len: text.length }
}

/** Compiles pattern pieces into a `Glob`. Consecutive `*` collapse into one. */
export function compileGlob (pieces: readonly GlobPiece[]): Glob {
  const segs: Segment[] = []
  // Characters are collected in arrays and joined, so segment texts are flat strings (fast to compare).
  let text: string[] = []
  let q: number[] = []
  const prefix: string[] = []
  let sawWild = false
  let lastWasStar = false
  for (const p of pieces) {
    for (let i = 0; i < p.text.length; i++) {
      const ch = p.text[i]
      if (p.wild && ch === '*') {
        sawWild = true
        if (!lastWasStar) { segs.push(makeSegment(text.join(''), q)); text = []; q = [] }
        lastWasStar = true
        continue
      }
      lastWasStar = false
      if (p.wild && ch === '?') {
        sawWild = true
        q.push(text.length)
        text.push('\u0000')
        continue
      }
      if (!sawWild) prefix.push(ch)
      text.push(ch)
    }
  }
  const last = text.join('')
  segs.push(makeSegment(last, q))
  let minLen = 0
  for (const s of segs) minLen += s.len
  return { segs, exact: sawWild ? undefined : last, prefix: prefix.join(''), minLen }
}

/** Compiles a plain pattern string where `*` and `?` are wildcards. */
export function compileGlobText (pattern: string): Glob {
  return compileGlob([{ text: pattern, wild: true }])
}

function segAt (seg: Segment, s: string, pos: number): boolean {
  const q = seg.q
  if (q === undefined) return s.startsWith(seg.text, pos)
  const t = seg.text
  for (let k = 0; k < seg.len; k++) {
    if (q[k] === 0 && s.charCodeAt(pos + k) !== t.charCodeAt(k)) return false
  }
  return true
}

function segFind (seg: Segment, s: string, from: number, limit: number): number {
  const len = seg.len
  if (len === 0) return from
  if (seg.q === undefined) {
    const idx = s.indexOf(seg.text, from)
    return idx >= 0 && idx + len <= limit ? idx : -1
  }
  for (let idx = from; idx + len <= limit; idx++) if (segAt(seg, s, idx)) return idx
  return -1
}

/**
 * True when `s[start, end)` matches the pattern. Greedy leftmost placement of the middle segments is exact here
 * because every segment has a fixed length: the first is anchored at `start`, the last at `end`.
 */
export function globMatchRange (g: Glob, s: string, start: number, end: number): boolean {
  const segs = g.segs
  const n = segs.length
  const first = segs[0]
  if (n === 1) return end - start === first.len && segAt(first, s, start)
  if (end - start < g.minLen) return false
  if (!segAt(first, s, start)) return false
  const last = segs[n - 1]
  const lastStart = end - last.len
  if (!segAt(last, s, lastStart)) return false
  let pos = start + first.len
  for (let i = 1; i < n - 1; i++) {
    const seg = segs[i]
    const idx = segFind(seg, s, pos, lastStart)
    if (idx < 0) return false
    pos = idx + seg.len
  }
  return true
}

/** True when the whole of `s` matches. */
export function globMatch (g: Glob, s: string): boolean {
  if (g.exact !== undefined) return s === g.exact
  return globMatchRange(g, s, 0, s.length)
}

/**
 * The pattern with a literal prefix removed, so a matcher for `topic/<name>` can test `<name>` directly.
 * `'no-match'` when no string starting with `lit` can match; `undefined` when a wildcard falls inside the prefix
 * (the caller must then match the full string).
 */
export function stripGlobPrefix (g: Glob, lit: string): Glob | 'no-match' | undefined {
  const first = g.segs[0]
  const cmpLen = Math.min(first.len, lit.length)
  for (let k = 0; k < cmpLen; k++) {
    if (first.q !== undefined && first.q[k] === 1) return undefined
    if (first.text.charCodeAt(k) !== lit.charCodeAt(k)) return 'no-match'
  }
  if (first.len < lit.length) return g.segs.length === 1 ? 'no-match' : undefined
  let q: Uint8Array | undefined
  if (first.q !== undefined) {
    q = first.q.slice(lit.length)
    if (!q.includes(1)) q = undefined
  }
  const rest: Segment = { text: flat(first.text.slice(lit.length)), q, len: first.len - lit.length }
  const segs = [rest, ...g.segs.slice(1)]
  return {
    segs,
    exact: g.exact === undefined ? undefined : flat(g.exact.slice(lit.length)),
    prefix: flat(g.prefix.slice(lit.length)),
    minLen: g.minLen - lit.length,
  }
}

/**
 * An ARN pattern matched component by component (IAM UG `reference_policies_elements_condition_operators`, ARN
 * operators: "each of the six colon-delimited components of the ARN is checked separately"), so a wildcard in the
 * first five components never crosses a `:`; the sixth (resource) component runs to the end and may hold colons.
 */
export interface ArnGlob {
  /** The bare `*` resource: matches anything, ARN or not. */
  readonly any: boolean
  /** `arn:partition:service:region:account:` when those five components are literal. */
  readonly headLiteral: string | undefined
  /** Per-component globs when some head component has a wildcard. */
  readonly headGlobs: readonly Glob[] | undefined
  readonly tail: Glob
  /** The full pattern when it has no wildcard. */
  readonly exact: string | undefined
  /** Literal prefix of every match. */
  readonly prefix: string
}

const pieceHasWildcard = (ps: readonly GlobPiece[]): boolean =>
  ps.some(p => p.wild && (p.text.includes('*') || p.text.includes('?')))

/** Compiles an ARN pattern from its five head components and its tail, each given as pieces. */
export function compileArnGlob (head: readonly (readonly GlobPiece[])[], tail: readonly GlobPiece[]): ArnGlob {
  const tailGlob = compileGlob(tail)
  if (!head.some(pieceHasWildcard)) {
    const headLiteral = flat(`${head.map(ps => ps.map(p => p.text).join('')).join(':')}:`)
    return {
      any: false,
      headLiteral,
      headGlobs: undefined,
      tail: tailGlob,
      exact: tailGlob.exact === undefined ? undefined : flat(headLiteral + tailGlob.exact),
      prefix: flat(headLiteral + tailGlob.prefix),
    }
  }
  const headGlobs = head.map(ps => compileGlob(ps))
  let prefix = ''
  for (let k = 0; k < 5; k++) {
    const g = headGlobs[k]
    if (g.exact === undefined) { prefix += g.prefix; break }
    prefix += `${g.exact}:`
    if (k === 4) prefix += tailGlob.prefix
  }
  return { any: false, headLiteral: undefined, headGlobs, tail: tailGlob, exact: undefined, prefix }
}

/**
 * Splits pattern pieces at the first five `:` characters (from any piece: a colon is a separator whether it was
 * written or substituted). Undefined when there are fewer than five.
 */
export function splitArnPieces (pieces: readonly GlobPiece[]): { head: GlobPiece[][], tail: GlobPiece[] } | undefined {
  const head: GlobPiece[][] = []
  let cur: GlobPiece[] = []
  let tail: GlobPiece[] | undefined
  for (const p of pieces) {
    if (tail !== undefined) { tail.push(p); continue }
    let start = 0
    for (let i = 0; i < p.text.length; i++) {
      if (p.text[i] !== ':') continue
      if (i > start) cur.push({ text: p.text.slice(start, i), wild: p.wild })
      head.push(cur)
      cur = []
      start = i + 1
      if (head.length === 5) {
        tail = []
        if (start < p.text.length) tail.push({ text: p.text.slice(start), wild: p.wild })
        break
      }
    }
    if (tail === undefined && start < p.text.length) cur.push({ text: p.text.slice(start), wild: p.wild })
  }
  if (tail === undefined) return undefined
  return { head, tail }
}

/** The ARN glob for the bare `*`. */
export const ANY_ARN: ArnGlob = {
  any: true, headLiteral: undefined, headGlobs: undefined, tail: compileGlobText('*'), exact: undefined, prefix: '',
}

/** True when `s` matches the ARN pattern. A string with fewer than five colons matches only `*`. */
export function arnGlobMatch (g: ArnGlob, s: string): boolean {
  if (g.any) return true
  if (g.exact !== undefined) return s === g.exact
  const head = g.headLiteral
  if (head !== undefined) {
    // lastIndexOf(head, 0) examines position 0 only, as one native comparison (faster than startsWith in V8).
    return s.lastIndexOf(head, 0) === 0 && globMatchRange(g.tail, s, head.length, s.length)
  }
  const hg = g.headGlobs as readonly Glob[]
  let start = 0
  for (let k = 0; k < 5; k++) {
    const c = s.indexOf(':', start)
    if (c < 0) return false
    if (!globMatchRange(hg[k], s, start, c)) return false
    start = c + 1
  }
  return globMatchRange(g.tail, s, start, s.length)
}
