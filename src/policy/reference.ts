/**
 * The reference interpreter: IAM policy evaluation written as plainly as possible, straight from the AWS rules,
 * with no precompilation and no sharing with the compiled evaluator beyond the parsed document and the typed-value
 * parsers. It is the oracle the compiled evaluator is differentially tested against, and it serves explanations
 * where speed does not matter. Each rule below cites the AWS documentation it implements.
 */
import { decodeBase64, foldCase, ipInBlock, parseBool, parseDateMs, parseIpBlock, parseNumber } from './keys.ts'
import type { IpBlock } from './keys.ts'
import { isNegatedOperator } from './parse.ts'
import type {
  AuthorizationRequest, BaseOperator, ConditionClause, ContextValue, Evaluation, NamedPolicy, ResourcePattern,
  Statement, StatementRef, Template,
} from './types.ts'

/** One character of a pattern after substitution: `wild` is true for a `*` or `?` written in the policy. */
interface PatChar { readonly c: string, readonly wild: boolean }

const escapeRe = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')

function charsToRegex (chars: readonly PatChar[]): RegExp {
  let src = ''
  for (const ch of chars) {
    if (ch.wild && ch.c === '*') src += '[\\s\\S]*'
    else if (ch.wild && ch.c === '?') src += '[\\s\\S]'
    else src += escapeRe(ch.c)
  }
  return new RegExp(`^${src}$`)
}

/** One PatChar per UTF-16 code unit: `?` matches one code unit, as in the compiled matcher. */
const textChars = (text: string, wild: boolean): PatChar[] => text.split('').map(c => ({ c, wild }))

/** IAM UG `reference_policies_elements_action`: "action names are case-insensitive" (ASCII letters). */
const lowerAscii = (s: string): string => s.replace(/[A-Z]/g, c => c.toLowerCase())

function lookup (ctx: ReadonlyMap<string, ContextValue>, key: string): ContextValue | undefined {
  const v = ctx.get(key)
  if (Array.isArray(v) && v.length === 0) return undefined
  return v
}

type Substituted = PatChar[] | 'missing' | 'refused'

/**
 * Substitutes variables (IAM UG `reference_policies_variables`). A variable with no value, or a multi-valued
 * one, uses its default if it has one, else the whole value is `missing` ("Policy variables with no value").
 * Substituted text is literal. With `harden`, a value that could change what an Allow resource addresses is
 * `refused` (Thingward hardening, see `isHostileValue` in keys.ts).
 */
function substitute (t: Template, ctx: ReadonlyMap<string, ContextValue>, harden: boolean): Substituted {
  const out: PatChar[] = []
  for (const p of t) {
    if (p.kind === 'text') { out.push(...textChars(p.text, true)); continue }
    if (p.kind === 'literal') { out.push(...textChars(p.text, false)); continue }
    const v = lookup(ctx, p.key)
    if (v === undefined || Array.isArray(v)) {
      if (p.defaultValue === undefined) return 'missing'
      out.push(...textChars(p.defaultValue, false))
      continue
    }
    const s = typeof v === 'string' ? v : String(v)
    if (harden && /^$|[/+#*?$\u0000-\u001f\u007f]/.test(s)) return 'refused'
    out.push(...textChars(s, false))
  }
  return out
}

function splitAtColons (chars: readonly PatChar[]): PatChar[][] | undefined {
  const parts: PatChar[][] = [[]]
  for (const ch of chars) {
    if (ch.c === ':' && parts.length < 6) { parts.push([]); continue }
    parts[parts.length - 1].push(ch)
  }
  return parts.length === 6 ? parts : undefined
}

function splitArn (s: string): string[] | undefined {
  const parts = s.split(':')
  if (parts.length < 6) return undefined
  return [...parts.slice(0, 5), parts.slice(5).join(':')]
}

/** ARN matching, component by component (IAM UG condition operators, ARN operators; Resource element). */
function arnMatches (pattern: readonly PatChar[], value: string): boolean {
  const pp = splitAtColons(pattern)
  if (pp === undefined) {
    // Not an ARN pattern: only a bare `*` matches (anything); otherwise nothing, so a `*` can never cross a `:`.
    return pattern.length === 1 && pattern[0].wild && pattern[0].c === '*'
  }
  const vp = splitArn(value)
  if (vp === undefined) return false
  return pp.every((p, i) => charsToRegex(p).test(vp[i]))
}

function resourceEntryMatches (r: ResourcePattern, resource: string, ctx: ReadonlyMap<string, ContextValue>, s: Statement): boolean {
  // IAM UG `reference_policies_elements_resource`: "*" matches every resource.
  if (r.any) return true
  const tail = substitute(r.tail, ctx, s.effect === 'Allow')
  // IAM UG variables, "Policy variables with no value": the entry cannot match.
  if (tail === 'missing') return false
  // Hardening: a refused value never widens an Allow: it cannot match under Resource, and under NotResource it is
  // treated as covering everything, so the statement grants nothing.
  if (tail === 'refused') return s.notResource
  const head = r.head.flatMap((h, i) => [...textChars(h, true), ...(i < 4 ? [{ c: ':', wild: false }] : [])])
  return arnMatches([...head, { c: ':', wild: false }, ...tail], resource)
}

function statementResourceMatches (s: Statement, resource: string, ctx: ReadonlyMap<string, ContextValue>): boolean {
  const any = s.resources.some(r => resourceEntryMatches(r, resource, ctx, s))
  // IAM UG `reference_policies_elements_notresource`: the statement applies to every resource not listed.
  return s.notResource ? !any : any
}

function statementActionMatches (s: Statement, action: string): boolean {
  const any = s.actions.some(a => charsToRegex(textChars(a.lower, true)).test(action))
  // IAM UG `reference_policies_elements_notaction`: every action except those listed.
  return s.notAction ? !any : any
}

const POSITIVE: Partial<Record<BaseOperator, BaseOperator>> = {
  StringNotEquals: 'StringEquals',
  StringNotEqualsIgnoreCase: 'StringEqualsIgnoreCase',
  StringNotLike: 'StringLike',
  NumericNotEquals: 'NumericEquals',
  DateNotEquals: 'DateEquals',
  NotIpAddress: 'IpAddress',
  ArnNotEquals: 'ArnEquals',
  ArnNotLike: 'ArnLike',
}

function parseAddress (v: string | number | boolean): IpBlock | undefined {
  if (typeof v !== 'string' || v.includes('/')) return undefined
  return parseIpBlock(v)
}

/** Does one request value match one policy value, under the positive form of the operator? */
function compareOne (base: BaseOperator, rv: string | number | boolean, pattern: readonly PatChar[]): boolean {
  const op = POSITIVE[base] ?? base
  const p = pattern.map(ch => ch.c).join('')
  const r = typeof rv === 'string' ? rv : String(rv)
  switch (op) {
    case 'StringEquals': return r === p
    case 'StringEqualsIgnoreCase': return foldCase(r) === foldCase(p)
    case 'StringLike': return charsToRegex(pattern).test(r)
    case 'NumericEquals': case 'NumericLessThan': case 'NumericLessThanEquals':
    case 'NumericGreaterThan': case 'NumericGreaterThanEquals':
    case 'DateEquals': case 'DateLessThan': case 'DateLessThanEquals':
    case 'DateGreaterThan': case 'DateGreaterThanEquals': {
      const numeric = op.startsWith('Numeric')
      const a = numeric ? parseNumber(rv) : parseDateMs(rv)
      const b = numeric ? parseNumber(p) : parseDateMs(p)
      if (Number.isNaN(a) || Number.isNaN(b)) return false
      if (op.endsWith('LessThanEquals')) return a <= b
      if (op.endsWith('LessThan')) return a < b
      if (op.endsWith('GreaterThanEquals')) return a >= b
      if (op.endsWith('GreaterThan')) return a > b
      return a === b
    }
    case 'Bool': {
      const a = parseBool(rv)
      return a !== undefined && a === parseBool(p)
    }
    case 'BinaryEquals': {
      const a = decodeBase64(rv)
      return a !== undefined && a === decodeBase64(p)
    }
    case 'IpAddress': {
      const a = parseAddress(rv)
      const b = parseIpBlock(p)
      return a !== undefined && b !== undefined && ipInBlock(a, b)
    }
    case 'ArnEquals': case 'ArnLike': return arnMatches(pattern, r)
    default: return false
  }
}

/**
 * One condition clause (IAM UG `reference_policies_elements_condition_operators`,
 * `…condition-logic-multiple-context-keys-or-values`, `…condition-single-vs-multi-valued-context-keys`).
 */
function clauseHolds (cl: ConditionClause, ctx: ReadonlyMap<string, ContextValue>): boolean {
  const raw = lookup(ctx, cl.key)
  const missing = raw === undefined
  // Null: "true" means the key must be absent, "false" that it must be present; values ORed.
  if (cl.base === 'Null') return cl.values.some(v => (parseBool(v.raw) === true) === missing)
  const negated = isNegatedOperator(cl.base)
  if (missing) {
    // …IfExists: "If the policy key is not present in the context, the condition evaluates to true".
    if (cl.ifExists) return true
    // ForAllValues returns true when the key is missing or empty; ForAnyValue false.
    if (cl.qualifier === 'ForAllValues') return true
    if (cl.qualifier === 'ForAnyValue') return false
    // A missing key: positive operators are false, negated operators true.
    return negated
  }
  const requestValues: readonly (string | number | boolean)[] = Array.isArray(raw) ? raw : [raw as string | number | boolean]
  const takesVars = cl.base.startsWith('String') || cl.base.startsWith('Arn') || cl.base === 'Bool'
  const patterns = cl.values.map(v => {
    if (!takesVars) return textChars(v.raw, true)
    const sub = substitute(v.template, ctx, false)
    // A policy value whose variable has no value never matches (and so never counts against a NOR).
    return sub === 'missing' || sub === 'refused' ? undefined : sub
  })
  const matchesAny = (rv: string | number | boolean): boolean =>
    patterns.some(p => p !== undefined && compareOne(cl.base, rv, p))
  if (cl.qualifier === 'ForAllValues') return requestValues.every(rv => negated ? !matchesAny(rv) : matchesAny(rv))
  if (cl.qualifier === 'ForAnyValue') return requestValues.some(rv => negated ? !matchesAny(rv) : matchesAny(rv))
  // Values of one key are ORed; a negated operator is a NOR: no request value may match any policy value.
  const hit = requestValues.some(matchesAny)
  return negated ? !hit : hit
}

function conditionsHold (s: Statement, ctx: ReadonlyMap<string, ContextValue>): boolean {
  // Operators and keys are ANDed.
  return s.conditions.every(cl => clauseHolds(cl, ctx))
}

function referencedKeys (s: Statement): { key: string, hasDefault: boolean }[] {
  const out: { key: string, hasDefault: boolean }[] = []
  const fromTemplate = (t: Template): void => {
    for (const p of t) if (p.kind === 'variable') out.push({ key: p.key, hasDefault: p.defaultValue !== undefined })
  }
  for (const r of s.resources) fromTemplate(r.tail)
  for (const c of s.conditions) {
    out.push({ key: c.key, hasDefault: false })
    for (const v of c.values) fromTemplate(v.template)
  }
  return out
}

function toContextMap (request: AuthorizationRequest): Map<string, ContextValue> {
  const m = new Map<string, ContextValue>()
  for (const [k, v] of Object.entries(request.context ?? {})) {
    // IAM UG `reference_policies_elements_condition`: "Condition key names are not case-sensitive".
    if (v !== undefined) m.set(k.toLowerCase(), v)
  }
  return m
}

/**
 * Evaluates a request against a principal's policies exactly as IAM documents it (IAM UG
 * `reference_policies_evaluation-logic`): an explicit Deny in any matching statement wins; otherwise a matching
 * Allow allows; otherwise the request is implicitly denied. Statement and policy order do not change the outcome;
 * the *reported* deciding statement is the first matching Deny, else the first matching Allow.
 * Pure and allocation-heavy: use `compilePolicies` on hot paths.
 */
export function evaluate (policies: readonly NamedPolicy[], request: AuthorizationRequest): Evaluation {
  const ctx = toContextMap(request)
  const action = lowerAscii(request.action)
  const allows: StatementRef[] = []
  const denies: StatementRef[] = []
  const missing = new Set<string>()
  for (const p of policies) {
    for (const s of p.document.statements) {
      if (!statementActionMatches(s, action)) continue
      for (const k of referencedKeys(s)) if (!k.hasDefault && lookup(ctx, k.key) === undefined) missing.add(k.key)
      if (!statementResourceMatches(s, request.resource, ctx)) continue
      if (!conditionsHold(s, ctx)) continue
      const ref: StatementRef = { policyName: p.name, policyVersion: p.versionId, statementIndex: s.index, sid: s.sid, effect: s.effect }
      if (s.effect === 'Deny') denies.push(ref)
      else allows.push(ref)
    }
  }
  const decider = denies[0] ?? allows[0]
  return {
    effect: denies.length > 0 ? 'explicitDeny' : allows.length > 0 ? 'allowed' : 'implicitDeny',
    allowed: denies.length === 0 && allows.length > 0,
    policyName: decider?.policyName,
    policyVersion: decider?.policyVersion,
    statementIndex: decider?.statementIndex,
    sid: decider?.sid,
    allows,
    denies,
    missingContextValues: [...missing].sort(),
  }
}
