/**
 * Differential property test: random policies and requests, and the compiled evaluator must agree with the
 * reference interpreter on the outcome and the deciding statement for every one (≥ 100,000 cases per run).
 * Seed: POLICY_PROPERTY_SEED (default fixed, so CI is reproducible); cases: POLICY_PROPERTY_CASES.
 */
import assert from 'node:assert/strict'
import test from 'node:test'
import { MalformedPolicyError, compilePolicies, effectiveContext, evaluate, parsePolicy } from '../src/policy/index.ts'
import type { ContextMap, ContextValue, NamedPolicy } from '../src/policy/index.ts'
import { seededRandom } from './helpers/random.ts'

const ARN = { region: 'eu-west-1', accountId: '123456789012' }
const H = 'arn:aws:iot:eu-west-1:123456789012:'

const SEED = Number(process.env.POLICY_PROPERTY_SEED ?? 20260101)
const TARGET = Number(process.env.POLICY_PROPERTY_CASES ?? 100_000)
const REQUESTS_PER_SET = 50

const r = seededRandom(SEED)
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]
const chance = (p: number): boolean => r() < p
const some = <T>(xs: readonly T[], min: number, max: number): T[] => {
  const n = min + Math.floor(r() * (max - min + 1))
  return Array.from({ length: n }, () => pick(xs))
}

const POLICY_ACTIONS = ['iot:Publish', 'iot:Subscribe', 'iot:Receive', 'iot:Connect', 'iot:GetThingShadow', 'iot:*', '*',
  'iot:P*', 'iot:?ublish', 'IOT:PUBLISH', 's3:GetObject', 'iot:*Shadow', 'iot:Re*e']
const REQUEST_ACTIONS = ['iot:Publish', 'iot:publish', 'IOT:SUBSCRIBE', 'iot:Receive', 'iot:Connect', 'iot:GetThingShadow',
  'iot:UpdateThingShadow', 's3:GetObject', 'iot:Pub', '\u0130ot:Publish', 'iot:RetainPublish']
const HEADS = [H, H, H, 'arn:aws:iot:*:*:', 'arn:aws:iot:eu-*:123456789012:', 'arn:aws:iot:us-east-1:123456789012:', 'arn:aws:iot:eu-west-?:*:',
  'arn:aws:iot:us-*:*:', 'arn:aws:iot:*:9*:', 'arn:*:iot:eu-west-1:*:']
const TYPES = ['topic/', 'topic/', 'topicfilter/', 'client/', 'thing/', 'top*', '*', 'topic*']
const PATTERN_SEGMENTS = ['a', 'b', 'a/b', '${iot:ClientId}', '${iot:Connection.Thing.ThingName}', '${aws:username}',
  "${aws:username, 'def'}", '*', '?', '${*}', '${?}', '${$}', '+', '#', 'x*y', '$aws', '${iot:Connection.Thing.Attributes[floor]}',
  '${aws:TagKeys}', '${aws:SourceIp}', '??', 'lamp-1', '${IOT:CLIENTID}']
const VALUE_SEGMENTS = ['a', 'b', 'lamp-1', 'alice', 'def', '*', '?', '+', '#', 'x', 'xy', 'x/y', '3', '10.0.0.1', '$aws', '${x}', '', 'xay', 'a/b']

function patternResource (): string {
  if (chance(0.08)) return '*'
  const segs = some(PATTERN_SEGMENTS, 1, 3)
  return pick(HEADS) + pick(TYPES) + segs.join(chance(0.8) ? '/' : '')
}

function requestResource (): string {
  if (chance(0.03)) return 'topic/a'
  const head = chance(0.9) ? H : pick(['arn:aws:iot:us-east-1:123456789012:', 'arn:aws:iot:eu-west-1:999:', 'arn:aws:iot:eu-west-1:123456789012:x:'])
  return head + pick(['topic/', 'topic/', 'topicfilter/', 'client/', 'thing/']) + some(VALUE_SEGMENTS, 1, 3).join('/')
}

const KEYS = {
  string: ['aws:username', 'iot:ClientId', 'iot:Connection.Thing.ThingName', 'iot:Connection.Thing.Attributes[floor]', 'AWS:USERNAME', 'aws:TagKeys', 'aws:PrincipalTag/team'],
  numeric: ['aws:MultiFactorAuthAge', 'iot:Connection.Thing.Attributes[floor]'],
  date: ['aws:CurrentTime', 'aws:TokenIssueTime'],
  bool: ['aws:SecureTransport', 'aws:MultiFactorAuthPresent', 'iot:Connection.Thing.IsAttached'],
  binary: ['aws:PrincipalTag/blob'],
  ip: ['aws:SourceIp'],
  arn: ['aws:PrincipalArn'],
}
const STRING_VALUES = ['alice', 'bob', 'a*', '?li*', 'lamp-1', '3', '${aws:username}', '${iot:ClientId}', "${aws:username, 'bob'}", '${*}', 'A*', '', 'ali?e', '${aws:TagKeys}', 'ALICE']
const NUMERIC_VALUES = ['0', '3', '10', '10.0', '-1.5', '3600', '1e2']
const DATE_VALUES = ['2026-01-01T00:00:00Z', '2026-06-01', '1767225600', '2025-12-31T23:00:00-01:00', '2030-01-01T00:00:00Z']
const BOOL_VALUES = ['true', 'false', 'TRUE', '${aws:SecureTransport}']
const BINARY_VALUES = ['QmluYXJ5VmFsdWU=', 'T3RoZXI=', 'YQ==']
const IP_VALUES = ['10.0.0.0/8', '10.0.0.1', '192.168.0.0/16', '0.0.0.0/0', '2001:db8::/32', '::1', '10.0.0.1/32']
const ARN_VALUES = ['arn:aws:iam::1:user/alice', 'arn:aws:iam::*:user/*', 'arn:aws:iam::*:user/${aws:username}', 'arn:aws:*:user/alice', '*', 'arn:aws:iam::1:user/?lice', 'arn:aws:iam:*:*:*']

const FAMILIES: { family: keyof typeof KEYS, ops: string[], values: string[] }[] = [
  { family: 'string', ops: ['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike'], values: STRING_VALUES },
  { family: 'numeric', ops: ['NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals'], values: NUMERIC_VALUES },
  { family: 'date', ops: ['DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals'], values: DATE_VALUES },
  { family: 'bool', ops: ['Bool'], values: BOOL_VALUES },
  { family: 'binary', ops: ['BinaryEquals'], values: BINARY_VALUES },
  { family: 'ip', ops: ['IpAddress', 'NotIpAddress'], values: IP_VALUES },
  { family: 'arn', ops: ['ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike'], values: ARN_VALUES },
]

function condition (): Record<string, Record<string, string | string[]>> {
  const out: Record<string, Record<string, string | string[]>> = {}
  for (let i = 0; i < 1 + Math.floor(r() * 2); i++) {
    if (chance(0.12)) {
      const key = pick([...KEYS.string, ...KEYS.bool, 'aws:TagKeys'])
      out.Null = { ...(out.Null ?? {}), [key]: pick(['true', 'false']) }
      continue
    }
    const f = pick(FAMILIES)
    let op = pick(f.ops)
    if (chance(0.2)) op = `${pick(['ForAllValues:', 'ForAnyValue:'])}${op}`
    if (chance(0.2)) op += 'IfExists'
    const block = out[op] ?? {}
    const values = some(f.values, 1, 3)
    block[pick(KEYS[f.family])] = values.length === 1 && chance(0.5) ? values[0] : values
    out[op] = block
  }
  return out
}

function statement (): Record<string, unknown> {
  const s: Record<string, unknown> = { Effect: chance(0.35) ? 'Deny' : 'Allow' }
  if (chance(0.6)) s.Sid = `S${Math.floor(r() * 1e9)}`
  const actions = some(POLICY_ACTIONS, 1, 2)
  s[chance(0.12) ? 'NotAction' : 'Action'] = actions.length === 1 ? actions[0] : actions
  const resources = Array.from({ length: 1 + Math.floor(r() * 2) }, patternResource)
  s[chance(0.12) ? 'NotResource' : 'Resource'] = resources.length === 1 ? resources[0] : resources
  if (chance(0.45)) s.Condition = condition()
  return s
}

let rejected = 0

/** A random policy set; documents the parser rightly rejects (e.g. a Bool variable under 2008-10-17) are redrawn. */
function policySet (): NamedPolicy[] {
  for (;;) {
    try {
      return drawPolicySet()
    } catch (err) {
      if (!(err instanceof MalformedPolicyError)) throw err
      rejected++
    }
  }
}

function drawPolicySet (): NamedPolicy[] {
  const n = 1 + Math.floor(r() * 2)
  const out: NamedPolicy[] = []
  for (let i = 0; i < n; i++) {
    const doc: Record<string, unknown> = { Statement: Array.from({ length: 1 + Math.floor(r() * 3) }, statement) }
    const v = r()
    if (v < 0.85) doc.Version = '2012-10-17'
    else if (v < 0.95) doc.Version = '2008-10-17'
    out.push({ name: `p${i}`, versionId: String(1 + Math.floor(r() * 5)), document: parsePolicy(JSON.stringify(doc), { maxChars: 100_000 }) })
  }
  return out
}

const CONTEXT_VALUES: Record<string, () => ContextValue> = {
  'aws:username': () => pick(['alice', 'bob', 'Alice', 'a*', 'lamp-1', '', 'ALICE', 'ali?e', 'x/y']),
  'iot:ClientId': () => pick(['lamp-1', 'alice', '+', '#', '*', 'a/b', '', 'b', 'x*y', 'lamp-2']),
  'iot:Connection.Thing.ThingName': () => pick(['lamp-1', 'alice', 'a', 'b', '*', 'lamp-2']),
  'iot:Connection.Thing.Attributes[floor]': () => pick(['3', '10', 'a', '+', '', '10.0']),
  'iot:Connection.Thing.IsAttached': () => pick([true, false, 'true']),
  'aws:TagKeys': () => pick([['a'], ['alice', 'bob'], [], ['a*', 'x'], ['lamp-1']]),
  'aws:PrincipalTag/team': () => pick(['ops', 'alice', 'bob']),
  'aws:MultiFactorAuthAge': () => pick([0, 3, 10, 3600, '10', 'abc', -1.5, 100]),
  'aws:CurrentTime': () => pick(['2026-01-01T00:00:00Z', '2026-06-01T00:00:00Z', '2025-12-31T00:00:00Z', 1767225600, 'never', '2030-01-01']),
  'aws:TokenIssueTime': () => pick(['2026-01-01T00:00:00Z', 1767225600]),
  'aws:SecureTransport': () => pick([true, false, 'true', 'false', 'yes']),
  'aws:MultiFactorAuthPresent': () => pick([true, false]),
  'aws:PrincipalTag/blob': () => pick(['QmluYXJ5VmFsdWU=', 'YQ==', 'not base64', 'T3RoZXI=']),
  'aws:SourceIp': () => pick(['10.0.0.1', '10.1.2.3', '192.168.1.1', '2001:db8::5', '::1', '8.8.8.8', 'bogus', '10.0.0.1/8']),
  'aws:PrincipalArn': () => pick(['arn:aws:iam::1:user/alice', 'arn:aws:iam::2:user/bob', 'alice', 'arn:aws:iam::1:role/x', 'arn:aws:iam::1:user/Alice']),
}

function context (): ContextMap {
  const out: Record<string, ContextValue> = {}
  for (const [k, gen] of Object.entries(CONTEXT_VALUES)) {
    if (chance(0.55)) out[chance(0.1) ? k.toUpperCase() : k] = gen()
  }
  return out
}

function isScoped (k: string): boolean {
  const l = k.toLowerCase()
  return l === 'iot:clientid' || l.startsWith('iot:connection.') || l.startsWith('iot:certificate.')
}

test(`compiled evaluator agrees with the reference interpreter on ≥ ${TARGET} random cases (seed ${SEED})`, () => {
  let cases = 0
  let allowed = 0
  let explicit = 0
  let sets = 0
  while (cases < TARGET) {
    const policies = policySet()
    sets++
    const ctx = context()
    const session: Record<string, ContextValue> = {}
    const request: Record<string, ContextValue> = {}
    for (const [k, v] of Object.entries(ctx)) {
      if (v === undefined) continue
      if (isScoped(k)) {
        session[k] = v
        if (chance(0.1)) request[k] = CONTEXT_VALUES['iot:ClientId']() // must be ignored by both
      } else if (chance(0.5)) session[k] = v
      else request[k] = v
    }
    const az = compilePolicies(policies, session, { arn: ARN })
    for (let i = 0; i < REQUESTS_PER_SET; i++) {
      // vary request-time keys per request
      const req: Record<string, ContextValue> = { ...request }
      if (chance(0.3)) for (const [k, gen] of Object.entries(CONTEXT_VALUES)) if (!isScoped(k) && !(k in session) && chance(0.3)) req[k] = gen()
      const action = pick(REQUEST_ACTIONS)
      const resource = requestResource()
      const ref = evaluate(policies, { action, resource, context: effectiveContext(session, req) })
      const got = az.authorize(action, resource, req)
      const where = (): string => JSON.stringify({ seed: SEED, set: sets, action, resource, session, req, policies: policies.map(p => p.document) }, null, 1)
      if (got.effect !== ref.effect || got.policyName !== ref.policyName || got.statementIndex !== ref.statementIndex) {
        assert.fail(`mismatch: compiled ${got.effect} ${String(got.policyName)}#${String(got.statementIndex)} vs reference ${ref.effect} ${String(ref.policyName)}#${String(ref.statementIndex)}\n${where()}`)
      }
      if (resource.startsWith(`${H}topic/`)) {
        const viaTopic = az.authorizeTopic(action, resource.slice(H.length + 6), req)
        if (viaTopic !== got) assert.fail(`authorizeTopic disagrees with authorize\n${where()}`)
      }
      if (i % 10 === 0) {
        const ex = az.explain(action, resource, req)
        assert.deepEqual(ex.allows.map(a => `${a.policyName}#${a.statementIndex}`), ref.allows.map(a => `${a.policyName}#${a.statementIndex}`), where())
        assert.deepEqual(ex.denies.map(a => `${a.policyName}#${a.statementIndex}`), ref.denies.map(a => `${a.policyName}#${a.statementIndex}`), where())
      }
      cases++
      if (ref.effect === 'allowed') allowed++
      if (ref.effect === 'explicitDeny') explicit++
    }
  }
  // The generator must exercise all three outcomes in meaningful proportions, and mostly produce valid policies.
  assert.ok(rejected < sets * 0.25, `${rejected} rejected documents for ${sets} sets`)
  assert.ok(allowed > cases * 0.05, `only ${allowed} allowed`)
  assert.ok(explicit > cases * 0.02, `only ${explicit} explicit denies`)
  assert.ok(cases - allowed - explicit > cases * 0.2, 'too few implicit denies')
})
