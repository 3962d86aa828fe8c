/**
 * The compiled evaluator: a principal's policies, with its session variables bound once, become a decision
 * function whose hot path is a Map lookup, a few string comparisons and no allocation. Semantics are those of the
 * reference interpreter (reference.ts); a property test checks that the two agree.
 *
 * What compile time does:
 * - Statements are indexed per requested action (cached per action string), Deny before Allow, order kept.
 * - Variables bound to the session (client id, thing, certificate, and any key the session supplies) are
 *   substituted into Resource entries and condition values; resource patterns become precompiled globs.
 * - Conditions whose key and values are all session-bound are evaluated once: a false one removes the statement.
 * - Everything else (aws:CurrentTime, aws:SourceIp per request, MFA…) is read from the per-request context.
 */
import type { ArnContext, Clock } from '../core/index.ts'
import { ANY_ARN, arnGlobMatch, compileArnGlob, compileGlob, compileGlobText, flat, globMatch, globMatchRange, splitArnPieces, stripGlobPrefix } from './glob.ts'
import type { ArnGlob, Glob, GlobPiece } from './glob.ts'
import {
  asciiLower, canonicalKey, decodeBase64, foldCase, ipInBlock, isHostileValue, isSessionScopedKey, parseBool, parseDateMs,
  parseIpBlock, parseNumber, scalarToString,
} from './keys.ts'
import type { IpBlock } from './keys.ts'
import { isNegatedOperator, operatorTakesVariables } from './parse.ts'
import type {
  BaseOperator, ConditionClause, ContextMap, ContextValue, Decision, Evaluation, NamedPolicy, ResourcePattern,
  Statement, StatementRef, Template,
} from './types.ts'

/** Options for `compilePolicies`. */
export interface CompileOptions {
  /**
   * Region and account of this deployment. Needed by `authorizeTopic`, which matches topic names without
   * building an ARN string per message.
   */
  readonly arn?: ArnContext
  /** Supplies `aws:CurrentTime` / `aws:EpochTime` when neither the session nor the request does (AWS always sets them). */
  readonly clock?: Clock
  /** Distinct action strings remembered per authorizer (default 256); further ones are resolved uncached. */
  readonly actionCacheSize?: number
}

/** A principal's policies compiled for one session. Obtain one with `compilePolicies`. */
export interface CompiledAuthorizer {
  /**
   * Decides `action` on `resource` (an ARN such as `arn:aws:iot:eu-west-1:123456789012:topic/a/b`). `request`
   * holds per-request keys (aws:CurrentTime, aws:SourceIp when not fixed per session, aws:MultiFactorAuthPresent…);
   * it cannot override session-bound keys. Returns a pre-built, frozen `Decision`; allocates nothing in the common
   * case.
   */
  authorize (action: string, resource: string, request?: ContextMap): Decision
  /**
   * `authorize` for a topic name (`iot:Publish`, `iot:Receive`, `iot:RetainPublish`, `iot:GetRetainedMessage`):
   * same answer as `authorize(action, 'arn:aws:iot:<region>:<account>:topic/' + topic)` without building the ARN.
   * Requires `CompileOptions.arn`.
   */
  authorizeTopic (action: string, topic: string, request?: ContextMap): Decision
  /** The same decision with every matching statement and the context keys that were missing. */
  explain (action: string, resource: string, request?: ContextMap): Evaluation
  /**
   * True when decisions depend only on (action, resource): nothing is read from the per-request context or the
   * clock. The gateway may then memoize decisions per session, e.g. by topic.
   */
  readonly cacheable: boolean
  /** The policies compiled, in evaluation order. */
  readonly policies: readonly { readonly name: string, readonly versionId: string }[]
  /**
   * Literal prefixes that every resource an Allow statement can grant for `action` starts with, or undefined when
   * unbounded (NotResource, `*`, a leading wildcard, a request-time variable). For analyzers: a resource outside
   * every prefix is certainly not allowed.
   */
  allowedResourcePrefixes (action: string): readonly string[] | undefined
}

const IMPLICIT_DENY: Decision = Object.freeze({
  effect: 'implicitDeny',
  allowed: false,
  policyName: undefined,
  policyVersion: undefined,
  statementIndex: undefined,
  sid: undefined,
})

/** The shared implicit-deny decision (nothing matched). */
export const IMPLICIT_DENY_DECISION: Decision = IMPLICIT_DENY

type Lookup = (req: ContextMap | undefined) => ContextValue | undefined

/** `k` equals the lower-cased key `lower` ignoring case (String.toLowerCase, as the reference does). */
function equalsIgnoreCase (k: string, lower: string): boolean {
  if (k.length !== lower.length) {
    for (let i = 0; i < k.length; i++) if (k.charCodeAt(i) > 127) return k.toLowerCase() === lower
    return false
  }
  for (let i = 0; i < k.length; i++) {
    let c = k.charCodeAt(i)
    if (c > 127) return k.toLowerCase() === lower
    if (c >= 65 && c <= 90) c += 32
    if (c !== lower.charCodeAt(i)) return false
  }
  return true
}

/** Case-insensitive key lookup in a request context: the canonical spelling first, then a scan without allocation. */
function lookupRequest (req: ContextMap, canonical: string, lower: string): ContextValue | undefined {
  const direct = req[canonical]
  if (direct !== undefined) return direct
  for (const k in req) if (equalsIgnoreCase(k, lower)) return req[k]
  return undefined
}

const normalizeValue = (v: ContextValue | undefined): ContextValue | undefined =>
  Array.isArray(v) && v.length === 0 ? undefined : v

/** Session-bound values and the rule for which keys are bound. */
/** Lower-cased context keys, interned: every session binds the same few keys (bounded; a miss is just a copy). */
const lowerKeys = new Map<string, string>()
function lowerKey (k: string): string {
  let l = lowerKeys.get(k)
  if (l === undefined) {
    l = k.toLowerCase()
    if (lowerKeys.size >= 10_000) lowerKeys.clear()
    lowerKeys.set(k, l)
  }
  return l
}

class Binder {
  readonly #session = new Map<string, ContextValue>()
  readonly #clock: Clock | undefined
  /** Set when some statement reads a per-request key: decisions are then not cacheable by (action, resource). */
  usesRequest = false
  constructor (session: ContextMap, clock: Clock | undefined) {
    for (const [k, v] of Object.entries(session)) {
      const nv = normalizeValue(v)
      if (nv !== undefined) this.#session.set(lowerKey(k), nv)
    }
    this.#clock = clock
  }

  /** Session keys are bound; so are absent connection-scoped keys (they stay absent for the whole session). */
  isBound (key: string): boolean { return this.#session.has(key) || isSessionScopedKey(key) }
  sessionValue (key: string): ContextValue | undefined { return this.#session.get(key) }

  /** The value of a key for explanations (session, then request, then clock). Not for hot paths. */
  valueOf (key: string, keyName: string, req: ContextMap | undefined): ContextValue | undefined {
    if (this.isBound(key)) return this.#session.get(key)
    const had = this.usesRequest
    const v = this.lookup(key, keyName)(req)
    this.usesRequest = had
    return v
  }

  /** A per-request getter for an unbound key. */
  lookup (key: string, keyName: string): Lookup {
    this.usesRequest = true
    const canonical = canonicalKey(keyName)
    const clock = this.#clock
    if (clock !== undefined && (key === 'aws:currenttime' || key === 'aws:epochtime')) {
      const epoch = key === 'aws:epochtime'
      return (req) => {
        const v = req === undefined ? undefined : normalizeValue(lookupRequest(req, canonical, key))
        if (v !== undefined) return v
        const ms = clock.nowMs()
        return epoch ? Math.floor(ms / 1000) : new Date(ms).toISOString()
      }
    }
    return (req) => req === undefined ? undefined : normalizeValue(lookupRequest(req, canonical, key))
  }
}

/** Result of binding a template: pieces, or why not. `dynamic` means a request-time variable is involved. */
type Bound = { readonly kind: 'pieces', readonly pieces: GlobPiece[] } | { readonly kind: 'missing' } |
  { readonly kind: 'refused' } | { readonly kind: 'dynamic' }

/**
 * Substitutes variables (IAM UG `reference_policies_variables`). No value, or a multi-valued key: the default if
 * given, else `missing` (the entry or value never matches). Substituted text is literal (`wild: false`). With
 * `harden`, a hostile value is `refused` (keys.ts `isHostileValue`).
 */
function bindTemplate (t: Template, value: (key: string) => ContextValue | undefined, harden: boolean): Bound {
  const pieces: GlobPiece[] = []
  for (const p of t) {
    if (p.kind === 'text') { pieces.push({ text: p.text, wild: true }); continue }
    if (p.kind === 'literal') { pieces.push({ text: p.text, wild: false }); continue }
    const v = value(p.key)
    if (v === undefined || Array.isArray(v)) {
      if (p.defaultValue === undefined) return { kind: 'missing' }
      pieces.push({ text: p.defaultValue, wild: false })
      continue
    }
    const s = scalarToString(v as string | number | boolean)
    if (harden && isHostileValue(s)) return { kind: 'refused' }
    pieces.push({ text: s, wild: false })
  }
  return { kind: 'pieces', pieces }
}

/** Binds with session values only; reports `dynamic` when a request-time key is referenced. */
function bindForCompile (t: Template, binder: Binder, harden: boolean): Bound {
  let dynamic = false
  const b = bindTemplate(t, k => {
    if (binder.isBound(k)) return binder.sessionValue(k)
    dynamic = true
    return 'x'
  }, harden)
  return dynamic ? { kind: 'dynamic' } : b
}

/** Compiled Resource/NotResource entry. `topic` is the matcher on bare topic names (set when an ARN context is known). */
type Entry =
  | { readonly kind: 'const', readonly value: boolean }
  | { readonly kind: 'glob', readonly arn: ArnGlob, topic: Glob | 'all' | 'none' | undefined, own: OwnHead | undefined }
  | { readonly kind: 'dynamic', readonly pattern: ResourcePattern, readonly lookups: ReadonlyMap<string, Lookup>, readonly binder: Binder }

type Cond = (req: ContextMap | undefined) => boolean

/**
 * For a pattern with wildcards in its head (`arn:aws:iot:*:*:…`): this deployment's own head and whether the
 * pattern's head components match it, decided once. ARNs that start with the own head then need only the tail.
 */
interface OwnHead {
  readonly head: string
  readonly ok: boolean
  /** `head` + the tail when the tail has no wildcard: one `===` decides the common case. */
  readonly exact: string | undefined
}

/** Per-decision scratch (allocation-free): whether the request ARN starts with the own head; -1 = not yet known. */
interface Scratch { ownHead: number }

interface CStatement {
  readonly ref: StatementRef
  readonly decision: Decision
  readonly deny: boolean
  readonly notAction: boolean
  readonly actions: readonly Glob[]
  readonly notResource: boolean
  readonly entries: readonly Entry[]
  /** Undefined when the conditions always hold; NEVER when they can never hold for this session. */
  readonly cond: Cond | undefined
  /** Keys the statement refers to, for `missingContextValues`. */
  readonly keys: readonly { readonly key: string, readonly keyName: string, readonly hasDefault: boolean }[]
}

interface ActionEntry {
  readonly denies: readonly CStatement[]
  readonly allows: readonly CStatement[]
  readonly all: readonly CStatement[]
}

const NEVER: Cond = () => false

function pieceText (pieces: readonly GlobPiece[]): string {
  let s = ''
  for (const p of pieces) s += p.text
  return s
}

function parseAddress (v: string | number | boolean): IpBlock | undefined {
  if (typeof v !== 'string' || v.includes('/')) return undefined
  return parseIpBlock(v)
}

/** "Does this request value match any policy value" under the operator's positive form, with values pre-parsed. */
function valueMatcher (base: BaseOperator, values: readonly GlobPiece[][]): (v: string | number | boolean) => boolean {
  switch (base) {
    case 'StringEquals': case 'StringNotEquals': {
      const set = values.map(pieceText)
      return (v) => {
        const s = typeof v === 'string' ? v : String(v)
        for (let i = 0; i < set.length; i++) if (set[i] === s) return true
        return false
      }
    }
    case 'StringEqualsIgnoreCase': case 'StringNotEqualsIgnoreCase': {
      const set = values.map(p => foldCase(pieceText(p)))
      return (v) => set.includes(foldCase(scalarToString(v)))
    }
    case 'StringLike': case 'StringNotLike': {
      const globs = values.map(p => compileGlob(p))
      return (v) => {
        const s = typeof v === 'string' ? v : String(v)
        for (let i = 0; i < globs.length; i++) if (globMatch(globs[i], s)) return true
        return false
      }
    }
    case 'Bool': {
      const bools = values.map(p => parseBool(pieceText(p)))
      return (v) => {
        const b = parseBool(v)
        return b !== undefined && bools.includes(b)
      }
    }
    case 'BinaryEquals': {
      const bins = values.map(p => decodeBase64(pieceText(p))).filter((b): b is string => b !== undefined)
      return (v) => {
        const b = decodeBase64(v)
        return b !== undefined && bins.includes(b)
      }
    }
    case 'IpAddress': case 'NotIpAddress': {
      const blocks = values.map(p => parseIpBlock(pieceText(p))).filter((b): b is IpBlock => b !== undefined)
      return (v) => {
        const a = parseAddress(v)
        if (a === undefined) return false
        for (const b of blocks) if (ipInBlock(a, b)) return true
        return false
      }
    }
    case 'ArnEquals': case 'ArnLike': case 'ArnNotEquals': case 'ArnNotLike': {
      // IAM UG condition operators: ArnEquals and ArnLike behave identically, component by component.
      const matchers = values.map(p => {
        const split = splitArnPieces(p)
        if (split === undefined) {
          // Not an ARN pattern: only a bare `*` matches (anything); otherwise nothing.
          const star = p.length === 1 && p[0].wild && p[0].text === '*'
          return (_s: string) => star
        }
        const ag = compileArnGlob(split.head, split.tail)
        return (s: string) => arnGlobMatch(ag, s)
      })
      return (v) => {
        const s = scalarToString(v)
        for (const m of matchers) if (m(s)) return true
        return false
      }
    }
    case 'Null': return () => false
    default: {
      // Numeric* and Date*: compare as numbers / epoch milliseconds; an unparsable value never matches.
      const numeric = base.startsWith('Numeric')
      const nums = values.map(p => numeric ? parseNumber(pieceText(p)) : parseDateMs(pieceText(p)))
      const cmp = base.replace(/^(Numeric|Date)/, '')
      return (v) => {
        const a = numeric ? parseNumber(v) : parseDateMs(v)
        if (Number.isNaN(a)) return false
        for (const b of nums) {
          if (Number.isNaN(b)) continue
          switch (cmp) {
            case 'Equals': case 'NotEquals': if (a === b) return true; break
            case 'LessThan': if (a < b) return true; break
            case 'LessThanEquals': if (a <= b) return true; break
            case 'GreaterThan': if (a > b) return true; break
            case 'GreaterThanEquals': if (a >= b) return true; break
          }
        }
        return false
      }
    }
  }
}

/**
 * Wraps a value matcher with IAM's rules (IAM UG condition operators; multiple keys or values; set operators):
 * missing key → IfExists true, ForAllValues true, ForAnyValue false, else negated-operator true / positive false;
 * values ORed; negated operators NOR; set qualifiers over multi-valued request keys.
 */
function clauseFromValue (cl: ConditionClause, anyMatch: (v: string | number | boolean) => boolean): (v: ContextValue | undefined) => boolean {
  const negated = isNegatedOperator(cl.base)
  if (cl.base === 'Null') {
    const wantAbsent = cl.values.map(v => parseBool(v.raw) === true)
    return (v) => {
      const absent = v === undefined
      for (const w of wantAbsent) if (w === absent) return true
      return false
    }
  }
  const onMissing = cl.ifExists || cl.qualifier === 'ForAllValues' ? true : cl.qualifier === 'ForAnyValue' ? false : negated
  const qualifier = cl.qualifier
  return (v) => {
    if (v === undefined) return onMissing
    if (!Array.isArray(v)) {
      const m = anyMatch(v as string | number | boolean)
      return negated ? !m : m
    }
    const arr = v as readonly string[]
    if (qualifier === 'ForAllValues') {
      for (const x of arr) if (anyMatch(x) === negated) return false
      return true
    }
    if (qualifier === 'ForAnyValue') {
      for (const x of arr) if (anyMatch(x) !== negated) return true
      return false
    }
    let hit = false
    for (const x of arr) if (anyMatch(x)) { hit = true; break }
    return negated ? !hit : hit
  }
}

/** Compiles one clause: a constant when key and values are session-bound, else a per-request closure. */
function compileClause (cl: ConditionClause, binder: Binder): boolean | Cond {
  const takesVars = operatorTakesVariables(cl.base)
  const boundValues: GlobPiece[][] = []
  const dynamicValues: ConditionClause['values'][number][] = []
  for (const v of cl.values) {
    if (!takesVars) { boundValues.push([{ text: v.raw, wild: true }]); continue }
    const b = bindForCompile(v.template, binder, false)
    if (b.kind === 'pieces') boundValues.push(b.pieces)
    else if (b.kind === 'dynamic') dynamicValues.push(v)
    // 'missing': a policy value whose variable has no value never matches, so it is dropped.
  }
  if (dynamicValues.length === 0) {
    const evalValue = clauseFromValue(cl, valueMatcher(cl.base, boundValues))
    if (binder.isBound(cl.key)) return evalValue(binder.sessionValue(cl.key))
    const get = binder.lookup(cl.key, cl.keyName)
    return (req) => evalValue(get(req))
  }
  // Rare: a condition value refers to a request-time key. Bind per request (allocates).
  const lookups = new Map<string, Lookup>()
  for (const v of dynamicValues) {
    for (const p of v.template) if (p.kind === 'variable' && !binder.isBound(p.key)) lookups.set(p.key, binder.lookup(p.key, p.name))
  }
  const keyGet: Lookup = binder.isBound(cl.key) ? () => binder.sessionValue(cl.key) : binder.lookup(cl.key, cl.keyName)
  return (req) => {
    const values = [...boundValues]
    for (const v of dynamicValues) {
      const b = bindTemplate(v.template, k => binder.isBound(k) ? binder.sessionValue(k) : normalizeValue(lookups.get(k)?.(req)), false)
      if (b.kind === 'pieces') values.push(b.pieces)
    }
    return clauseFromValue(cl, valueMatcher(cl.base, values))(keyGet(req))
  }
}

const headPieces = (r: ResourcePattern): GlobPiece[][] => r.head.map(h => [{ text: h, wild: true }])

/**
 * Entries of resources without policy variables are the same for every session: one per pattern and ARN context
 * (the PolicyAuthorizer constructor completes an entry's topic matcher once, for its ARN context).
 */
const staticEntries = new WeakMap<ResourcePattern, Map<string, Entry>>()

function sharedEntry (r: ResourcePattern, s: Statement, binder: Binder, arnKey: string): Entry {
  if (r.tail.some(p => p.kind === 'variable')) return compileEntry(r, s, binder)
  let byArn = staticEntries.get(r)
  if (byArn === undefined) { byArn = new Map(); staticEntries.set(r, byArn) }
  let e = byArn.get(arnKey)
  if (e === undefined) { e = compileEntry(r, s, binder); byArn.set(arnKey, e) }
  return e
}

function compileEntry (r: ResourcePattern, s: Statement, binder: Binder): Entry {
  if (r.any) return { kind: 'glob', arn: ANY_ARN, topic: 'all', own: undefined }
  const b = bindForCompile(r.tail, binder, s.effect === 'Allow')
  if (b.kind === 'missing') return { kind: 'const', value: false }
  // Hardening (keys.ts isHostileValue): under Resource the entry cannot match; under NotResource it covers all.
  if (b.kind === 'refused') return { kind: 'const', value: s.notResource }
  if (b.kind === 'dynamic') {
    const lookups = new Map<string, Lookup>()
    for (const p of r.tail) if (p.kind === 'variable' && !binder.isBound(p.key)) lookups.set(p.key, binder.lookup(p.key, p.name))
    return { kind: 'dynamic', pattern: r, lookups, binder }
  }
  return { kind: 'glob', arn: compileArnGlob(headPieces(r), b.pieces), topic: undefined, own: undefined }
}

function entryMatchesDynamic (e: Extract<Entry, { kind: 'dynamic' }>, resource: string, req: ContextMap | undefined, s: CStatement): boolean {
  const b = bindTemplate(e.pattern.tail, k => e.binder.isBound(k) ? e.binder.sessionValue(k) : normalizeValue(e.lookups.get(k)?.(req)), !s.deny)
  if (b.kind === 'missing' || b.kind === 'dynamic') return false
  if (b.kind === 'refused') return s.notResource
  return arnGlobMatch(compileArnGlob(headPieces(e.pattern), b.pieces), resource)
}

/**
 * `s` starts with `t`. `lastIndexOf(t, 0)` examines position 0 only and runs as one native comparison; V8's
 * `startsWith` and a charCodeAt loop compare character by character (measured 2–3× slower on a 36-character head).
 */
function startsWithAt (s: string, t: string): boolean {
  return s.lastIndexOf(t, 0) === 0
}

function globEntryMatches (e: Extract<Entry, { kind: 'glob' }>, resource: string, scratch: Scratch): boolean {
  const a = e.arn
  if (a.exact !== undefined) return resource === a.exact
  const own = e.own
  if (own === undefined) return arnGlobMatch(a, resource)
  if (own.exact !== undefined && resource === own.exact) return own.ok
  let m = scratch.ownHead
  if (m < 0) { m = startsWithAt(resource, own.head) ? 1 : 0; scratch.ownHead = m }
  // Own head: the head components were decided at compile time; only the tail is left.
  if (m === 1) return own.ok && own.exact === undefined && globMatchRange(a.tail, resource, own.head.length, resource.length)
  return arnGlobMatch(a, resource)
}

function resourceMatches (s: CStatement, resource: string, req: ContextMap | undefined, scratch: Scratch): boolean {
  const entries = s.entries
  let any = false
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]
    const m = e.kind === 'glob' ? globEntryMatches(e, resource, scratch) : e.kind === 'const' ? e.value : entryMatchesDynamic(e, resource, req, s)
    if (m) { any = true; break }
  }
  // IAM UG `reference_policies_elements_notresource`: NotResource applies to everything not listed.
  return any !== s.notResource
}

function topicMatches (s: CStatement, topicHead: string, topic: string, req: ContextMap | undefined, scratch: Scratch): boolean {
  const entries = s.entries
  let any = false
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]
    let m: boolean
    if (e.kind === 'glob') {
      const t = e.topic
      if (t === 'all') m = true
      else if (t === 'none') m = false
      else if (t !== undefined) m = globMatch(t, topic)
      else m = globEntryMatches(e, topicHead + topic, scratch)
    } else if (e.kind === 'const') {
      m = e.value
    } else {
      m = entryMatchesDynamic(e, topicHead + topic, req, s)
    }
    if (m) { any = true; break }
  }
  return any !== s.notResource
}

/** Compiled authorizer implementation. */
class PolicyAuthorizer implements CompiledAuthorizer {
  readonly #statements: readonly CStatement[]
  readonly #cache = new Map<string, ActionEntry>()
  readonly #cacheSize: number
  readonly #topicHead: string | undefined
  readonly #binder: Binder
  readonly #scratch: Scratch = { ownHead: -1 }
  readonly cacheable: boolean
  readonly policies: readonly { readonly name: string, readonly versionId: string }[]

  constructor (statements: CStatement[], binder: Binder, policies: readonly NamedPolicy[], options: CompileOptions) {
    this.#statements = statements
    this.#binder = binder
    this.cacheable = !binder.usesRequest
    this.#cacheSize = options.actionCacheSize ?? 256
    this.policies = Object.freeze(policies.map(p => Object.freeze({ name: p.name, versionId: p.versionId })))
    if (options.arn !== undefined) {
      const head = flat(`arn:aws:iot:${options.arn.region}:${options.arn.accountId}:`)
      this.#topicHead = flat(`${head}topic/`)
      // Topic-name matchers: strip the literal `arn:aws:iot:<r>:<a>:topic/` from each pattern once. A wildcard
      // head (`arn:aws:iot:*:*:`) is decided against this deployment's own head, once (component by component,
      // as IAM matches ARNs), since every ARN authorizeTopic builds starts with it.
      for (const st of statements) {
        for (const e of st.entries) {
          if (e.kind !== 'glob' || e.topic !== undefined) continue
          let headOk: boolean
          if (e.arn.headLiteral !== undefined) {
            headOk = e.arn.headLiteral === head
          } else {
            headOk = arnGlobMatch({ ...e.arn, tail: compileGlobText('*') }, `${head}x`)
            e.own = { head, ok: headOk, exact: e.arn.tail.exact === undefined ? undefined : flat(head + e.arn.tail.exact) }
          }
          if (!headOk) { e.topic = 'none'; continue }
          const stripped = stripGlobPrefix(e.arn.tail, 'topic/')
          e.topic = stripped === 'no-match' ? 'none' : stripped
        }
      }
    }
  }

  #entry (action: string): ActionEntry {
    const hit = this.#cache.get(action)
    if (hit !== undefined) return hit
    const lower = asciiLower(action)
    const denies: CStatement[] = []
    const allows: CStatement[] = []
    const all: CStatement[] = []
    for (const s of this.#statements) {
      let any = false
      for (const g of s.actions) if (globMatch(g, lower)) { any = true; break }
      // IAM UG `reference_policies_elements_notaction`: NotAction applies to every action not listed.
      if (any === s.notAction) continue
      all.push(s)
      if (s.cond === NEVER) continue
      if (s.deny) denies.push(s)
      else allows.push(s)
    }
    const entry: ActionEntry = { denies, allows, all }
    if (this.#cache.size < this.#cacheSize) this.#cache.set(action, entry)
    return entry
  }

  authorize (action: string, resource: string, request?: ContextMap): Decision {
    const entry = this.#entry(action)
    const scratch = this.#scratch
    scratch.ownHead = -1
    // IAM UG `reference_policies_evaluation-logic`: an explicit Deny overrides any Allow.
    const denies = entry.denies
    for (let i = 0; i < denies.length; i++) {
      const s = denies[i]
      if (resourceMatches(s, resource, request, scratch) && (s.cond === undefined || s.cond(request))) return s.decision
    }
    const allows = entry.allows
    for (let i = 0; i < allows.length; i++) {
      const s = allows[i]
      if (resourceMatches(s, resource, request, scratch) && (s.cond === undefined || s.cond(request))) return s.decision
    }
    // Nothing allowed it: implicit deny.
    return IMPLICIT_DENY
  }

  authorizeTopic (action: string, topic: string, request?: ContextMap): Decision {
    const head = this.#topicHead
    if (head === undefined) throw new TypeError('authorizeTopic needs CompileOptions.arn')
    const entry = this.#entry(action)
    const scratch = this.#scratch
    scratch.ownHead = -1
    const denies = entry.denies
    for (let i = 0; i < denies.length; i++) {
      const s = denies[i]
      if (topicMatches(s, head, topic, request, scratch) && (s.cond === undefined || s.cond(request))) return s.decision
    }
    const allows = entry.allows
    for (let i = 0; i < allows.length; i++) {
      const s = allows[i]
      if (topicMatches(s, head, topic, request, scratch) && (s.cond === undefined || s.cond(request))) return s.decision
    }
    return IMPLICIT_DENY
  }

  explain (action: string, resource: string, request?: ContextMap): Evaluation {
    const entry = this.#entry(action)
    const allows: StatementRef[] = []
    const denies: StatementRef[] = []
    const missing = new Set<string>()
    const scratch = this.#scratch
    scratch.ownHead = -1
    for (const s of entry.all) {
      for (const k of s.keys) {
        if (k.hasDefault || missing.has(k.key)) continue
        if (this.#binder.valueOf(k.key, k.keyName, request) === undefined) missing.add(k.key)
      }
      if (s.cond === NEVER) continue
      if (!resourceMatches(s, resource, request, scratch)) continue
      if (s.cond !== undefined && !s.cond(request)) continue
      if (s.deny) denies.push(s.ref)
      else allows.push(s.ref)
    }
    const decision = this.authorize(action, resource, request)
    return { ...decision, allows, denies, missingContextValues: [...missing].sort() }
  }

  allowedResourcePrefixes (action: string): readonly string[] | undefined {
    const out = new Set<string>()
    for (const s of this.#entry(action).allows) {
      if (s.notResource) return undefined
      for (const e of s.entries) {
        if (e.kind === 'const') { if (e.value) return undefined; continue }
        if (e.kind === 'dynamic') return undefined
        if (e.arn.prefix === '') return undefined
        out.add(e.arn.prefix)
      }
    }
    return [...out]
  }
}

function statementKeys (s: Statement): CStatement['keys'] {
  const out: { key: string, keyName: string, hasDefault: boolean }[] = []
  const fromTemplate = (t: Template): void => {
    for (const p of t) if (p.kind === 'variable') out.push({ key: p.key, keyName: p.name, hasDefault: p.defaultValue !== undefined })
  }
  for (const r of s.resources) fromTemplate(r.tail)
  for (const c of s.conditions) {
    out.push({ key: c.key, keyName: c.keyName, hasDefault: false })
    for (const v of c.values) fromTemplate(v.template)
  }
  return out
}

/**
 * Compiles the policies that apply to one principal (certificate policies plus its thing's group policies,
 * parents included, as the registry resolves them) into a decision function, with `session` variables bound:
 * `iot:ClientId`, `iot:Connection.Thing.*`, `iot:Certificate.*`, and any other key fixed for the session (for
 * example `aws:SourceIp` of an MQTT connection). See `buildSessionVariables` for the AWS rules on which thing
 * variables a connection gets. Compile once per session; recompile on a `PolicyChange` that affects it.
 */
/** What a statement compiles to whatever the session: shared by every session that uses the same policy version. */
interface StaticStatement {
  readonly ref: StatementRef
  readonly decision: Decision
  readonly actions: readonly Glob[]
  readonly keys: CStatement['keys']
}

/**
 * Session-independent parts per parsed statement and policy name/version. Parsed policy versions are cached by
 * the registry, so a fleet of sessions on the same role policy shares one copy instead of one each (memory per
 * connection, and compile time); entries go with the parsed document.
 */
const staticParts = new WeakMap<Statement, Map<string, StaticStatement>>()

function staticStatement (p: NamedPolicy, s: Statement): StaticStatement {
  let byVersion = staticParts.get(s)
  if (byVersion === undefined) { byVersion = new Map(); staticParts.set(s, byVersion) }
  const key = `${p.name}\0${p.versionId}`
  let st = byVersion.get(key)
  if (st === undefined) {
    st = Object.freeze({
      ref: Object.freeze({ policyName: p.name, policyVersion: p.versionId, statementIndex: s.index, sid: s.sid, effect: s.effect }),
      decision: Object.freeze({
        effect: s.effect === 'Deny' ? 'explicitDeny' : 'allowed',
        allowed: s.effect === 'Allow',
        policyName: p.name,
        policyVersion: p.versionId,
        statementIndex: s.index,
        sid: s.sid,
      }),
      actions: Object.freeze(s.actions.map(a => compileGlobText(a.lower))),
      keys: Object.freeze(statementKeys(s)),
    })
    byVersion.set(key, st)
  }
  return st
}

export function compilePolicies (policies: readonly NamedPolicy[], session: ContextMap = {}, options: CompileOptions = {}): CompiledAuthorizer {
  const binder = new Binder(session, options.clock)
  const arnKey = options.arn === undefined ? '' : `${options.arn.region}:${options.arn.accountId}`
  const statements: CStatement[] = []
  for (const p of policies) {
    for (const s of p.document.statements) {
      const { ref, decision, actions, keys } = staticStatement(p, s)
      const conds: Cond[] = []
      let never = false
      for (const cl of s.conditions) {
        const c = compileClause(cl, binder)
        if (c === false) never = true
        else if (c !== true) conds.push(c)
      }
      let cond: Cond | undefined
      if (never) cond = NEVER
      else if (conds.length === 1) cond = conds[0]
      else if (conds.length > 1) {
        cond = (req) => {
          for (let i = 0; i < conds.length; i++) if (!conds[i](req)) return false
          return true
        }
      }
      statements.push({
        ref,
        decision,
        deny: s.effect === 'Deny',
        notAction: s.notAction,
        actions,
        notResource: s.notResource,
        entries: s.resources.map(r => sharedEntry(r, s, binder, arnKey)),
        cond,
        keys,
      })
    }
  }
  return new PolicyAuthorizer(statements, binder, policies, options)
}
