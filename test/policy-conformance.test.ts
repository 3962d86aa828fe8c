/**
 * Table-driven conformance suite for the policy engine. Every case cites the AWS documentation rule it checks
 * (IAM UG = IAM User Guide page id, IoT DG = AWS IoT Developer Guide page id). Each case runs through
 * - the reference interpreter (`evaluate`) with the merged context,
 * - the compiled authorizer with connection-scoped keys in the session and the rest per request,
 * - the compiled authorizer with every key bound at compile time (the constant-folding path),
 * - and `authorizeTopic` whenever the resource is a topic ARN.
 */
import assert from 'node:assert/strict'
import test from 'node:test'
import { compilePolicies, effectiveContext, evaluate, parsePolicy } from '../src/policy/index.ts'
import type { ContextMap, DecisionEffect, NamedPolicy } from '../src/policy/index.ts'

const ARN = { region: 'eu-west-1', accountId: '123456789012' }
const H = 'arn:aws:iot:eu-west-1:123456789012:'

type Json = string | number | boolean | null | Json[] | { [k: string]: Json }
interface St { Sid?: string, Effect: 'Allow' | 'Deny', Action?: Json, NotAction?: Json, Resource?: Json, NotResource?: Json, Condition?: Json }

interface Case {
  readonly rule: string
  readonly policies: readonly (readonly St[])[]
  readonly version?: '2012-10-17' | '2008-10-17' | null
  readonly action: string
  readonly resource: string
  readonly ctx?: ContextMap
  readonly expect: DecisionEffect
  /** Expected deciding Sid, when it matters. */
  readonly sid?: string
}

const allow = (Action: Json, Resource: Json, Condition?: Json, Sid?: string): St => ({ Sid, Effect: 'Allow', Action, Resource, Condition })
const deny = (Action: Json, Resource: Json, Condition?: Json, Sid?: string): St => ({ Sid, Effect: 'Deny', Action, Resource, Condition })
const t = (topic: string): string => `${H}topic/${topic}`
const tf = (filter: string): string => `${H}topicfilter/${filter}`
const c = (id: string): string => `${H}client/${id}`
const th = (name: string): string => `${H}thing/${name}`

const CASES: Case[] = []
const add = (rule: string, policies: readonly (readonly St[])[], action: string, resource: string, expect: DecisionEffect, ctx?: ContextMap, extra: Partial<Case> = {}): void => {
  CASES.push({ rule, policies, action, resource, expect, ctx, ...extra })
}
/** A condition case: one Allow statement on topic a/b guarded by `cond`. */
const cond = (rule: string, condition: Json, ctx: ContextMap, expect: DecisionEffect): void =>
  add(rule, [[allow('iot:Publish', t('a/b'), condition)]], 'iot:Publish', t('a/b'), expect, ctx)

// ── A. Evaluation logic ─────────────────────────────────────────────────────────────────────────────────────────
const EVAL = 'IAM UG reference_policies_evaluation-logic'
add(`${EVAL}: a request is implicitly denied when no policy applies`, [], 'iot:Publish', t('a'), 'implicitDeny')
add(`${EVAL}: an Allow that matches grants`, [[allow('iot:Publish', t('a'))]], 'iot:Publish', t('a'), 'allowed')
add(`${EVAL}: an explicit Deny overrides an Allow in the same policy`, [[allow('iot:Publish', t('a')), deny('iot:Publish', t('a'), undefined, 'D')]], 'iot:Publish', t('a'), 'explicitDeny', undefined, { sid: 'D' })
add(`${EVAL}: an explicit Deny in another policy overrides an Allow`, [[allow('iot:Publish', t('a'))], [deny('iot:*', '*')]], 'iot:Publish', t('a'), 'explicitDeny')
add(`${EVAL}: statement order does not matter (Deny first)`, [[deny('iot:Publish', t('a')), allow('iot:Publish', t('a'))]], 'iot:Publish', t('a'), 'explicitDeny')
add(`${EVAL}: policy order does not matter (Deny in the first policy)`, [[deny('iot:Publish', t('a'))], [allow('iot:Publish', t('a'))]], 'iot:Publish', t('a'), 'explicitDeny')
add(`${EVAL}: a Deny on another resource does not deny`, [[allow('iot:Publish', t('*')), deny('iot:Publish', t('b'))]], 'iot:Publish', t('a'), 'allowed')
add(`${EVAL}: a Deny on another action does not deny`, [[allow('iot:Publish', t('a')), deny('iot:Subscribe', '*')]], 'iot:Publish', t('a'), 'allowed')
add(`${EVAL}: a Deny whose condition is false does not apply`, [[allow('iot:Publish', t('a')), deny('iot:Publish', t('a'), { StringEquals: { 'iot:ClientId': 'x' } })]], 'iot:Publish', t('a'), 'allowed', { 'iot:ClientId': 'y' })
add(`${EVAL}: an Allow whose condition is false does not grant`, [[allow('iot:Publish', t('a'), { StringEquals: { 'iot:ClientId': 'x' } })]], 'iot:Publish', t('a'), 'implicitDeny', { 'iot:ClientId': 'y' })
add(`${EVAL}: Allows from several policies are a union`, [[allow('iot:Publish', t('a'))], [allow('iot:Publish', t('b'))]], 'iot:Publish', t('b'), 'allowed')
add(`${EVAL}: the first matching Allow is reported`, [[allow('iot:Publish', t('*'), undefined, 'First'), allow('iot:Publish', t('a'), undefined, 'Second')]], 'iot:Publish', t('a'), 'allowed', undefined, { sid: 'First' })
add(`${EVAL}: a Deny with Resource "*" denies everything it names`, [[allow('iot:*', '*'), deny('iot:Connect', '*')]], 'iot:Connect', c('dev1'), 'explicitDeny')

// ── B. Action / NotAction ───────────────────────────────────────────────────────────────────────────────────────
const ACT = 'IAM UG reference_policies_elements_action'
const NACT = 'IAM UG reference_policies_elements_notaction'
add(`${ACT}: action names are case-insensitive (request in lower case)`, [[allow('iot:Publish', t('a'))]], 'iot:publish', t('a'), 'allowed')
add(`${ACT}: action names are case-insensitive (policy in upper case)`, [[allow('IOT:PUBLISH', t('a'))]], 'iot:Publish', t('a'), 'allowed')
add(`${ACT}: the service prefix is case-insensitive`, [[allow('IoT:Publish', t('a'))]], 'IOT:publish', t('a'), 'allowed')
add(`${ACT}: "*" matches every action`, [[allow('*', t('a'))]], 'iot:Publish', t('a'), 'allowed')
add(`${ACT}: "iot:*" matches every IoT action`, [[allow('iot:*', '*')]], 'iot:UpdateThingShadow', th('x'), 'allowed')
add(`${ACT}: a wildcard may appear inside the name`, [[allow('iot:*ThingShadow', '*')]], 'iot:GetThingShadow', th('x'), 'allowed')
add(`${ACT}: a wildcard inside the name does not match other names`, [[allow('iot:*ThingShadow', '*')]], 'iot:Publish', t('a'), 'implicitDeny')
add(`${ACT}: "?" matches exactly one character`, [[allow('iot:?ublish', '*')]], 'iot:Publish', t('a'), 'allowed')
add(`${ACT}: "?" does not match zero characters`, [[allow('iot:P?ublish', '*')]], 'iot:Publish', t('a'), 'implicitDeny')
add(`${ACT}: a list of actions is ORed`, [[allow(['iot:Subscribe', 'iot:Publish'], '*')]], 'iot:Publish', t('a'), 'allowed')
add(`${ACT}: another service's action does not match`, [[allow('s3:*', '*')]], 'iot:Publish', t('a'), 'implicitDeny')
add(`${ACT}: a prefix alone is not a wildcard`, [[allow('iot:Pub', '*')]], 'iot:Publish', t('a'), 'implicitDeny')
add(`${NACT}: Allow with NotAction grants every other action`, [[{ Effect: 'Allow', NotAction: 'iot:Connect', Resource: '*' }]], 'iot:Publish', t('a'), 'allowed')
add(`${NACT}: Allow with NotAction does not grant the listed action`, [[{ Effect: 'Allow', NotAction: 'iot:Connect', Resource: '*' }]], 'iot:Connect', c('a'), 'implicitDeny')
add(`${NACT}: NotAction comparison is case-insensitive`, [[{ Effect: 'Allow', NotAction: 'IOT:CONNECT', Resource: '*' }]], 'iot:connect', c('a'), 'implicitDeny')
add(`${NACT}: Deny with NotAction denies every other action`, [[allow('iot:*', '*'), { Effect: 'Deny', NotAction: ['iot:Connect', 'iot:Publish'], Resource: '*' }]], 'iot:Subscribe', tf('a'), 'explicitDeny')
add(`${NACT}: Deny with NotAction leaves the listed actions to other statements`, [[allow('iot:*', '*'), { Effect: 'Deny', NotAction: ['iot:Connect', 'iot:Publish'], Resource: '*' }]], 'iot:Publish', t('a'), 'allowed')
add(`${NACT}: NotAction with a wildcard excludes every match`, [[{ Effect: 'Allow', NotAction: 'iot:*Shadow', Resource: '*' }]], 'iot:DeleteThingShadow', th('a'), 'implicitDeny')

// ── C. Resource / NotResource ───────────────────────────────────────────────────────────────────────────────────
const RES = 'IAM UG reference_policies_elements_resource'
const NRES = 'IAM UG reference_policies_elements_notresource'
add(`${RES}: "*" matches every resource`, [[allow('iot:Publish', '*')]], 'iot:Publish', t('x/y'), 'allowed')
add(`${RES}: ARNs are case-sensitive`, [[allow('iot:Publish', t('Sensors/A'))]], 'iot:Publish', t('sensors/a'), 'implicitDeny')
add(`${RES}: ARNs are case-sensitive in the resource type too`, [[allow('iot:Publish', `${H}Topic/a`)]], 'iot:Publish', t('a'), 'implicitDeny')
add(`${RES}: an exact ARN matches itself`, [[allow('iot:Publish', t('a/b'))]], 'iot:Publish', t('a/b'), 'allowed')
add(`${RES}: an exact ARN does not match a longer one`, [[allow('iot:Publish', t('a/b'))]], 'iot:Publish', t('a/b/c'), 'implicitDeny')
add(`${RES}: "*" at the end matches any suffix`, [[allow('iot:Publish', t('a/*'))]], 'iot:Publish', t('a/b/c'), 'allowed')
add(`${RES}: "*" matches zero characters`, [[allow('iot:Publish', t('a/*'))]], 'iot:Publish', t('a/'), 'allowed')
add(`${RES}: "*" in the middle`, [[allow('iot:Publish', t('a/*/c'))]], 'iot:Publish', t('a/b/c'), 'allowed')
add(`${RES}: several "*"`, [[allow('iot:Publish', t('*/x/*/y'))]], 'iot:Publish', t('a/x/b/c/y'), 'allowed')
add(`${RES}: several "*" still anchor the end`, [[allow('iot:Publish', t('*/x/*/y'))]], 'iot:Publish', t('a/x/b/c/yz'), 'implicitDeny')
add(`${RES}: "?" matches exactly one character`, [[allow('iot:Publish', t('dev-??'))]], 'iot:Publish', t('dev-42'), 'allowed')
add(`${RES}: "?" does not match two characters`, [[allow('iot:Publish', t('dev-?'))]], 'iot:Publish', t('dev-42'), 'implicitDeny')
add(`${RES}: "?" does not match zero characters`, [[allow('iot:Publish', t('dev-?'))]], 'iot:Publish', t('dev-'), 'implicitDeny')
add(`${RES}: wildcards in the region segment`, [[allow('iot:Publish', 'arn:aws:iot:*:123456789012:topic/a')]], 'iot:Publish', t('a'), 'allowed')
add(`${RES}: wildcards in region and account`, [[allow('iot:Publish', 'arn:aws:iot:*:*:topic/a')]], 'iot:Publish', t('a'), 'allowed')
add(`${RES}: another account does not match`, [[allow('iot:Publish', 'arn:aws:iot:eu-west-1:999999999999:topic/a')]], 'iot:Publish', t('a'), 'implicitDeny')
add(`${RES}: a wildcard in a head segment does not cross ":"`, [[allow('iot:Publish', 'arn:aws:iot:eu-*:topic/a:x:y:z')]], 'iot:Publish', t('a'), 'implicitDeny')
add(`${RES}: the resource part may contain ":"`, [[allow('iot:Publish', t('a:b'))]], 'iot:Publish', t('a:b'), 'allowed')
add(`${RES}: a request that is not an ARN matches only "*"`, [[allow('iot:Publish', t('*'))]], 'iot:Publish', 'topic/a', 'implicitDeny')
add(`${RES}: a list of resources is ORed`, [[allow('iot:Publish', [t('x'), t('a')])]], 'iot:Publish', t('a'), 'allowed')
add(`${RES}: a wildcard resource type prefix matches topic and topicfilter alike`, [[allow('iot:Subscribe', `${H}topic*`)]], 'iot:Subscribe', tf('a'), 'allowed')
add(`${NRES}: Allow with NotResource grants every other resource`, [[{ Effect: 'Allow', Action: 'iot:Publish', NotResource: t('secret/*') }]], 'iot:Publish', t('public/a'), 'allowed')
add(`${NRES}: Allow with NotResource does not grant a listed resource`, [[{ Effect: 'Allow', Action: 'iot:Publish', NotResource: t('secret/*') }]], 'iot:Publish', t('secret/a'), 'implicitDeny')
add(`${NRES}: Deny with NotResource denies everything outside the list`, [[allow('iot:*', '*'), { Effect: 'Deny', Action: 'iot:Publish', NotResource: [t('own/*')] }]], 'iot:Publish', t('other/a'), 'explicitDeny')
add(`${NRES}: Deny with NotResource leaves listed resources alone`, [[allow('iot:*', '*'), { Effect: 'Deny', Action: 'iot:Publish', NotResource: [t('own/*')] }]], 'iot:Publish', t('own/a'), 'allowed')
add(`${NRES}: NotResource with several entries excludes each`, [[{ Effect: 'Allow', Action: 'iot:Publish', NotResource: [t('x'), t('y')] }]], 'iot:Publish', t('y'), 'implicitDeny')

// ── D. AWS IoT specifics ────────────────────────────────────────────────────────────────────────────────────────
const IOTV = 'IoT DG iot-policy-variables'
const PUBSUB = 'IoT DG pub-sub-policy'
const ACTIONS = 'IoT DG iot-policy-actions'
add(`${IOTV}: * in a topic resource crosses topic levels`, [[allow('iot:Publish', t('sensors/*'))]], 'iot:Publish', t('sensors/a/b/c'), 'allowed')
add(`${IOTV}: + is a literal character in a policy`, [[allow('iot:Publish', t('sensors/+/temp'))]], 'iot:Publish', t('sensors/dev1/temp'), 'implicitDeny')
add(`${IOTV}: + matches only the literal +`, [[allow('iot:Subscribe', tf('sensors/+/temp'))]], 'iot:Subscribe', tf('sensors/+/temp'), 'allowed')
add(`${IOTV}: # is a literal character in a policy`, [[allow('iot:Subscribe', tf('sensors/#'))]], 'iot:Subscribe', tf('sensors/dev1'), 'implicitDeny')
add(`${IOTV}: # matches only the literal #`, [[allow('iot:Subscribe', tf('sensors/#'))]], 'iot:Subscribe', tf('sensors/#'), 'allowed')
add(`${IOTV}: a run of ? stays within one level of the right length`, [[allow('iot:Publish', t('sensors/????/temp'))]], 'iot:Publish', t('sensors/dev1/temp'), 'allowed')
add(`${IOTV}: a run of ? does not span a longer level`, [[allow('iot:Publish', t('sensors/????/temp'))]], 'iot:Publish', t('sensors/device1/temp'), 'implicitDeny')
add(`${PUBSUB}: topicfilter/x/* admits the MQTT filter x/#`, [[allow('iot:Subscribe', tf('fleet/*'))]], 'iot:Subscribe', tf('fleet/#'), 'allowed')
add(`${PUBSUB}: topicfilter/x/* admits the MQTT filter x/+/y`, [[allow('iot:Subscribe', tf('fleet/*'))]], 'iot:Subscribe', tf('fleet/+/y'), 'allowed')
add(`${ACTIONS}: Subscribe is checked against topicfilter/, not topic/`, [[allow('iot:Subscribe', t('fleet/*'))]], 'iot:Subscribe', tf('fleet/a'), 'implicitDeny')
add(`${ACTIONS}: Publish is checked against topic/, not topicfilter/`, [[allow('iot:Publish', tf('fleet/*'))]], 'iot:Publish', t('fleet/a'), 'implicitDeny')
add(`${ACTIONS}: Receive is checked against topic/`, [[allow('iot:Receive', t('fleet/*'))]], 'iot:Receive', t('fleet/a'), 'allowed')
add(`${ACTIONS}: Receive is checked per message: a message outside the grant is denied`, [[allow('iot:Subscribe', tf('fleet/*')), allow('iot:Receive', t('fleet/public/*'))]], 'iot:Receive', t('fleet/private/x'), 'implicitDeny')
add(`${ACTIONS}: Connect is checked against client/<clientId>`, [[allow('iot:Connect', c('dev-1'))]], 'iot:Connect', c('dev-1'), 'allowed')
add(`${ACTIONS}: Connect for another client id is denied`, [[allow('iot:Connect', c('dev-1'))]], 'iot:Connect', c('dev-2'), 'implicitDeny')
add(`${ACTIONS}: shadow actions are checked against thing/<name>`, [[allow('iot:GetThingShadow', th('lamp'))]], 'iot:GetThingShadow', th('lamp'), 'allowed')
add(`${ACTIONS}: a named shadow is thing/<name>/<shadow>`, [[allow('iot:GetThingShadow', th('lamp'))]], 'iot:GetThingShadow', th('lamp/config'), 'implicitDeny')
add(`${ACTIONS}: RetainPublish is a separate action from Publish`, [[allow('iot:Publish', t('a'))]], 'iot:RetainPublish', t('a'), 'implicitDeny')
add(`${ACTIONS}: reserved $aws topics are plain resources`, [[allow('iot:Publish', t('$aws/things/lamp/shadow/update'))]], 'iot:Publish', t('$aws/things/lamp/shadow/update'), 'allowed')
add(`${ACTIONS}: a $ that does not start "\${" is literal in 2012-10-17`, [[allow('iot:Publish', t('$aws/things/*/shadow/get'))]], 'iot:Publish', t('$aws/things/x/shadow/get'), 'allowed')

// ── E. Condition operators ──────────────────────────────────────────────────────────────────────────────────────
const OPS = 'IAM UG reference_policies_elements_condition_operators'
const U = 'aws:username'
cond(`${OPS}: StringEquals matches exactly`, { StringEquals: { [U]: 'alice' } }, { [U]: 'alice' }, 'allowed')
cond(`${OPS}: StringEquals is case-sensitive`, { StringEquals: { [U]: 'alice' } }, { [U]: 'Alice' }, 'implicitDeny')
cond(`${OPS}: StringEquals does not treat * as a wildcard`, { StringEquals: { [U]: 'a*' } }, { [U]: 'alice' }, 'implicitDeny')
cond(`${OPS}: StringEquals compares a * literally`, { StringEquals: { [U]: 'a*' } }, { [U]: 'a*' }, 'allowed')
cond(`${OPS}: StringNotEquals is true for a different value`, { StringNotEquals: { [U]: 'alice' } }, { [U]: 'bob' }, 'allowed')
cond(`${OPS}: StringNotEquals is false for the same value`, { StringNotEquals: { [U]: 'alice' } }, { [U]: 'alice' }, 'implicitDeny')
cond(`${OPS}: StringEqualsIgnoreCase ignores case`, { StringEqualsIgnoreCase: { [U]: 'ALICE' } }, { [U]: 'alice' }, 'allowed')
cond(`${OPS}: StringEqualsIgnoreCase still compares the letters`, { StringEqualsIgnoreCase: { [U]: 'ALICE' } }, { [U]: 'alicia' }, 'implicitDeny')
cond(`${OPS}: StringNotEqualsIgnoreCase is false for a case variant`, { StringNotEqualsIgnoreCase: { [U]: 'ALICE' } }, { [U]: 'Alice' }, 'implicitDeny')
cond(`${OPS}: StringNotEqualsIgnoreCase is true for another value`, { StringNotEqualsIgnoreCase: { [U]: 'ALICE' } }, { [U]: 'bob' }, 'allowed')
cond(`${OPS}: StringLike supports *`, { StringLike: { [U]: 'al*' } }, { [U]: 'alice' }, 'allowed')
cond(`${OPS}: StringLike supports ?`, { StringLike: { [U]: 'b?b' } }, { [U]: 'bob' }, 'allowed')
cond(`${OPS}: StringLike is case-sensitive`, { StringLike: { [U]: 'al*' } }, { [U]: 'Alice' }, 'implicitDeny')
cond(`${OPS}: StringLike is anchored at both ends`, { StringLike: { [U]: 'li' } }, { [U]: 'alice' }, 'implicitDeny')
cond(`${OPS}: StringNotLike is true when the pattern does not match`, { StringNotLike: { [U]: 'adm*' } }, { [U]: 'alice' }, 'allowed')
cond(`${OPS}: StringNotLike is false when the pattern matches`, { StringNotLike: { [U]: 'adm*' } }, { [U]: 'admin' }, 'implicitDeny')
cond(`${OPS}: string operators compare numbers as their text`, { StringEquals: { 'aws:PrincipalTag/level': '3' } }, { 'aws:PrincipalTag/level': 3 }, 'allowed')
cond(`${OPS}: string operators compare booleans as true/false`, { StringEquals: { 'aws:SecureTransport': 'true' } }, { 'aws:SecureTransport': true }, 'allowed')
const N = 'aws:MultiFactorAuthAge'
cond(`${OPS}: NumericEquals`, { NumericEquals: { [N]: '10' } }, { [N]: 10 }, 'allowed')
cond(`${OPS}: NumericEquals compares numerically (10 = 10.0)`, { NumericEquals: { [N]: '10.0' } }, { [N]: '10' }, 'allowed')
cond(`${OPS}: NumericEquals false`, { NumericEquals: { [N]: '10' } }, { [N]: 11 }, 'implicitDeny')
cond(`${OPS}: NumericNotEquals true`, { NumericNotEquals: { [N]: '10' } }, { [N]: 11 }, 'allowed')
cond(`${OPS}: NumericNotEquals false`, { NumericNotEquals: { [N]: '10' } }, { [N]: 10 }, 'implicitDeny')
cond(`${OPS}: NumericLessThan true`, { NumericLessThan: { [N]: '3600' } }, { [N]: 60 }, 'allowed')
cond(`${OPS}: NumericLessThan false at equality`, { NumericLessThan: { [N]: '3600' } }, { [N]: 3600 }, 'implicitDeny')
cond(`${OPS}: NumericLessThanEquals true at equality`, { NumericLessThanEquals: { [N]: '3600' } }, { [N]: 3600 }, 'allowed')
cond(`${OPS}: NumericLessThanEquals false above`, { NumericLessThanEquals: { [N]: '3600' } }, { [N]: 3601 }, 'implicitDeny')
cond(`${OPS}: NumericGreaterThan true`, { NumericGreaterThan: { [N]: '5' } }, { [N]: 6 }, 'allowed')
cond(`${OPS}: NumericGreaterThan false at equality`, { NumericGreaterThan: { [N]: '5' } }, { [N]: 5 }, 'implicitDeny')
cond(`${OPS}: NumericGreaterThanEquals true at equality`, { NumericGreaterThanEquals: { [N]: '5' } }, { [N]: 5 }, 'allowed')
cond(`${OPS}: NumericGreaterThanEquals handles negatives and decimals`, { NumericGreaterThanEquals: { [N]: '-1.5' } }, { [N]: '-1.25' }, 'allowed')
cond(`${OPS}: a numeric operator never matches a non-numeric value`, { NumericLessThan: { [N]: '5' } }, { [N]: 'abc' }, 'implicitDeny')
const D = 'aws:CurrentTime'
cond(`${OPS}: DateEquals with ISO 8601`, { DateEquals: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: '2026-01-01T00:00:00Z' }, 'allowed')
cond(`${OPS}: DateEquals across time zones`, { DateEquals: { [D]: '2026-01-01T01:00:00+01:00' } }, { [D]: '2026-01-01T00:00:00Z' }, 'allowed')
cond(`${OPS}: DateEquals with epoch seconds`, { DateEquals: { [D]: '1767225600' } }, { [D]: '2026-01-01T00:00:00Z' }, 'allowed')
cond(`${OPS}: DateNotEquals true`, { DateNotEquals: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: '2026-01-02T00:00:00Z' }, 'allowed')
cond(`${OPS}: DateNotEquals false`, { DateNotEquals: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: '2026-01-01T00:00:00Z' }, 'implicitDeny')
cond(`${OPS}: DateLessThan true`, { DateLessThan: { [D]: '2027-01-01T00:00:00Z' } }, { [D]: '2026-06-01T12:00:00Z' }, 'allowed')
cond(`${OPS}: DateLessThan false after`, { DateLessThan: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: '2026-06-01T12:00:00Z' }, 'implicitDeny')
cond(`${OPS}: DateLessThanEquals true at equality`, { DateLessThanEquals: { [D]: '2026-06-01' } }, { [D]: '2026-06-01T00:00:00Z' }, 'allowed')
cond(`${OPS}: DateGreaterThan true`, { DateGreaterThan: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: '2026-06-01T12:00:00Z' }, 'allowed')
cond(`${OPS}: DateGreaterThan false at equality`, { DateGreaterThan: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: '2026-01-01T00:00:00Z' }, 'implicitDeny')
cond(`${OPS}: DateGreaterThanEquals true at equality`, { DateGreaterThanEquals: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: '2026-01-01T00:00:00Z' }, 'allowed')
cond(`${OPS}: a date operator never matches a non-date value`, { DateGreaterThan: { [D]: '2026-01-01T00:00:00Z' } }, { [D]: 'tomorrow' }, 'implicitDeny')
const B = 'aws:SecureTransport'
cond(`${OPS}: Bool true matches a boolean true`, { Bool: { [B]: 'true' } }, { [B]: true }, 'allowed')
cond(`${OPS}: Bool true matches the string "true"`, { Bool: { [B]: 'true' } }, { [B]: 'true' }, 'allowed')
cond(`${OPS}: Bool true does not match false`, { Bool: { [B]: 'true' } }, { [B]: false }, 'implicitDeny')
cond(`${OPS}: Bool false matches false`, { Bool: { [B]: 'false' } }, { [B]: false }, 'allowed')
cond(`${OPS}: Bool does not match a non-boolean value`, { Bool: { [B]: 'true' } }, { [B]: 'yes' }, 'implicitDeny')
cond(`${OPS}: Bool accepts a JSON boolean in the policy`, { Bool: { [B]: true } }, { [B]: true }, 'allowed')
const BIN = 'aws:PrincipalTag/blob'
cond(`${OPS}: BinaryEquals compares base64 bytes`, { BinaryEquals: { [BIN]: 'QmluYXJ5VmFsdWU=' } }, { [BIN]: 'QmluYXJ5VmFsdWU=' }, 'allowed')
cond(`${OPS}: BinaryEquals false for other bytes`, { BinaryEquals: { [BIN]: 'QmluYXJ5VmFsdWU=' } }, { [BIN]: 'T3RoZXI=' }, 'implicitDeny')
cond(`${OPS}: BinaryEquals false for a value that is not base64`, { BinaryEquals: { [BIN]: 'QmluYXJ5VmFsdWU=' } }, { [BIN]: 'not base64!' }, 'implicitDeny')
const IP = 'aws:SourceIp'
cond(`${OPS}: IpAddress matches inside a CIDR`, { IpAddress: { [IP]: '203.0.113.0/24' } }, { [IP]: '203.0.113.7' }, 'allowed')
cond(`${OPS}: IpAddress does not match outside`, { IpAddress: { [IP]: '203.0.113.0/24' } }, { [IP]: '203.0.114.7' }, 'implicitDeny')
cond(`${OPS}: IpAddress with a bare address is /32`, { IpAddress: { [IP]: '203.0.113.7' } }, { [IP]: '203.0.113.7' }, 'allowed')
cond(`${OPS}: IpAddress with a bare address excludes neighbours`, { IpAddress: { [IP]: '203.0.113.7' } }, { [IP]: '203.0.113.8' }, 'implicitDeny')
cond(`${OPS}: IpAddress /0 matches every IPv4 address`, { IpAddress: { [IP]: '0.0.0.0/0' } }, { [IP]: '198.51.100.1' }, 'allowed')
cond(`${OPS}: IpAddress supports IPv6`, { IpAddress: { [IP]: '2001:db8::/32' } }, { [IP]: '2001:db8:1::5' }, 'allowed')
cond(`${OPS}: IpAddress IPv6 outside the prefix`, { IpAddress: { [IP]: '2001:db8::/32' } }, { [IP]: '2001:db9::5' }, 'implicitDeny')
cond(`${OPS}: an IPv4 address is not in an IPv6 block`, { IpAddress: { [IP]: '::/0' } }, { [IP]: '10.0.0.1' }, 'implicitDeny')
cond(`${OPS}: NotIpAddress true outside`, { NotIpAddress: { [IP]: '10.0.0.0/8' } }, { [IP]: '192.0.2.1' }, 'allowed')
cond(`${OPS}: NotIpAddress false inside`, { NotIpAddress: { [IP]: '10.0.0.0/8' } }, { [IP]: '10.1.2.3' }, 'implicitDeny')
const ARNK = 'aws:PrincipalArn'
cond(`${OPS}: ArnEquals matches an ARN`, { ArnEquals: { [ARNK]: 'arn:aws:iam::123456789012:user/alice' } }, { [ARNK]: 'arn:aws:iam::123456789012:user/alice' }, 'allowed')
cond(`${OPS}: ArnEquals supports wildcards like ArnLike`, { ArnEquals: { [ARNK]: 'arn:aws:iam::*:user/*' } }, { [ARNK]: 'arn:aws:iam::123456789012:user/alice' }, 'allowed')
cond(`${OPS}: ArnLike matches per component`, { ArnLike: { [ARNK]: 'arn:aws:iam::123456789012:user/*' } }, { [ARNK]: 'arn:aws:iam::123456789012:user/bob' }, 'allowed')
cond(`${OPS}: ArnLike: a wildcard in one component does not cross ":"`, { ArnLike: { [ARNK]: 'arn:aws:*:user/alice' } }, { [ARNK]: 'arn:aws:iam::123456789012:user/alice' }, 'implicitDeny')
cond(`${OPS}: ArnLike is case-sensitive`, { ArnLike: { [ARNK]: 'arn:aws:iam::*:user/Alice' } }, { [ARNK]: 'arn:aws:iam::1:user/alice' }, 'implicitDeny')
cond(`${OPS}: ArnLike never matches a value that is not an ARN`, { ArnLike: { [ARNK]: 'arn:aws:iam::*:*' } }, { [ARNK]: 'alice' }, 'implicitDeny')
cond(`${OPS}: ArnNotEquals true for another ARN`, { ArnNotEquals: { [ARNK]: 'arn:aws:iam::1:user/alice' } }, { [ARNK]: 'arn:aws:iam::1:user/bob' }, 'allowed')
cond(`${OPS}: ArnNotLike false for a match`, { ArnNotLike: { [ARNK]: 'arn:aws:iam::*:user/*' } }, { [ARNK]: 'arn:aws:iam::1:user/bob' }, 'implicitDeny')
const NULL = 'IAM UG reference_policies_elements_condition_operators (Null)'
cond(`${NULL}: Null true holds when the key is absent`, { Null: { [U]: 'true' } }, {}, 'allowed')
cond(`${NULL}: Null true fails when the key is present`, { Null: { [U]: 'true' } }, { [U]: 'alice' }, 'implicitDeny')
cond(`${NULL}: Null false holds when the key is present`, { Null: { [U]: 'false' } }, { [U]: 'alice' }, 'allowed')
cond(`${NULL}: Null false fails when the key is absent`, { Null: { [U]: 'false' } }, {}, 'implicitDeny')
cond(`${NULL}: an empty multi-valued key counts as absent`, { Null: { 'aws:TagKeys': 'true' } }, { 'aws:TagKeys': [] }, 'allowed')

// ── F. Missing keys and …IfExists ───────────────────────────────────────────────────────────────────────────────
const MISS = 'IAM UG reference_policies_elements_condition_operators (missing key)'
const IFX = 'IAM UG reference_policies_elements_condition_operators (…IfExists)'
cond(`${MISS}: a positive operator on a missing key is false`, { StringEquals: { [U]: 'alice' } }, {}, 'implicitDeny')
cond(`${MISS}: a negated operator on a missing key is true`, { StringNotEquals: { [U]: 'alice' } }, {}, 'allowed')
cond(`${MISS}: NotIpAddress on a missing key is true`, { NotIpAddress: { [IP]: '10.0.0.0/8' } }, {}, 'allowed')
cond(`${MISS}: a numeric operator on a missing key is false`, { NumericLessThan: { [N]: '10' } }, {}, 'implicitDeny')
cond(`${MISS}: condition key names are case-insensitive`, { StringEquals: { 'AWS:USERNAME': 'alice' } }, { 'aws:username': 'alice' }, 'allowed')
cond(`${MISS}: context key names are case-insensitive`, { StringEquals: { 'aws:username': 'alice' } }, { 'Aws:UserName': 'alice' }, 'allowed')
cond(`${IFX}: StringEqualsIfExists is true when the key is missing`, { StringEqualsIfExists: { [U]: 'alice' } }, {}, 'allowed')
cond(`${IFX}: StringEqualsIfExists applies the operator when present`, { StringEqualsIfExists: { [U]: 'alice' } }, { [U]: 'bob' }, 'implicitDeny')
cond(`${IFX}: StringLikeIfExists`, { StringLikeIfExists: { [U]: 'a*' } }, { [U]: 'alice' }, 'allowed')
cond(`${IFX}: NumericLessThanIfExists missing`, { NumericLessThanIfExists: { [N]: '10' } }, {}, 'allowed')
cond(`${IFX}: NumericLessThanIfExists present and false`, { NumericLessThanIfExists: { [N]: '10' } }, { [N]: 20 }, 'implicitDeny')
cond(`${IFX}: DateGreaterThanIfExists missing`, { DateGreaterThanIfExists: { [D]: '2026-01-01T00:00:00Z' } }, {}, 'allowed')
cond(`${IFX}: BoolIfExists missing`, { BoolIfExists: { [B]: 'true' } }, {}, 'allowed')
cond(`${IFX}: BoolIfExists present and false`, { BoolIfExists: { [B]: 'true' } }, { [B]: false }, 'implicitDeny')
cond(`${IFX}: IpAddressIfExists missing`, { IpAddressIfExists: { [IP]: '10.0.0.0/8' } }, {}, 'allowed')
cond(`${IFX}: ArnLikeIfExists present and matching`, { ArnLikeIfExists: { [ARNK]: 'arn:aws:iam::*:user/*' } }, { [ARNK]: 'arn:aws:iam::1:user/a' }, 'allowed')
cond(`${IFX}: BinaryEqualsIfExists missing`, { BinaryEqualsIfExists: { [BIN]: 'QmluYXJ5VmFsdWU=' } }, {}, 'allowed')
cond(`${IFX}: StringNotEqualsIfExists present and equal is false`, { StringNotEqualsIfExists: { [U]: 'alice' } }, { [U]: 'alice' }, 'implicitDeny')
add(`${IFX}: a Deny with a negated …IfExists operator still denies when the key is missing`,
  [[allow('iot:*', '*'), deny('iot:Publish', '*', { NotIpAddressIfExists: { [IP]: '10.0.0.0/8' } })]], 'iot:Publish', t('a'), 'explicitDeny', {})
add(`${IFX}: a Deny with a positive …IfExists operator denies when the key is missing`,
  [[allow('iot:*', '*'), deny('iot:Publish', '*', { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } })]], 'iot:Publish', t('a'), 'explicitDeny', {})

// ── G. Set operators ────────────────────────────────────────────────────────────────────────────────────────────
const SET = 'IAM UG reference_policies_condition-single-vs-multi-valued-context-keys'
const K = 'aws:TagKeys'
cond(`${SET}: ForAnyValue true when one request value matches`, { 'ForAnyValue:StringEquals': { [K]: ['a', 'b'] } }, { [K]: ['x', 'b'] }, 'allowed')
cond(`${SET}: ForAnyValue false when none matches`, { 'ForAnyValue:StringEquals': { [K]: ['a', 'b'] } }, { [K]: ['x', 'y'] }, 'implicitDeny')
cond(`${SET}: ForAnyValue false when the key is missing`, { 'ForAnyValue:StringEquals': { [K]: ['a'] } }, {}, 'implicitDeny')
cond(`${SET}: ForAnyValue false for an empty list`, { 'ForAnyValue:StringEquals': { [K]: ['a'] } }, { [K]: [] }, 'implicitDeny')
cond(`${SET}: ForAllValues true when every request value matches some policy value`, { 'ForAllValues:StringEquals': { [K]: ['a', 'b', 'c'] } }, { [K]: ['a', 'c'] }, 'allowed')
cond(`${SET}: ForAllValues false when one request value matches nothing`, { 'ForAllValues:StringEquals': { [K]: ['a', 'b'] } }, { [K]: ['a', 'z'] }, 'implicitDeny')
cond(`${SET}: ForAllValues true when the key is missing`, { 'ForAllValues:StringEquals': { [K]: ['a'] } }, {}, 'allowed')
cond(`${SET}: ForAllValues true for an empty list`, { 'ForAllValues:StringEquals': { [K]: ['a'] } }, { [K]: [] }, 'allowed')
cond(`${SET}: ForAllValues with StringLike`, { 'ForAllValues:StringLike': { [K]: ['Created*'] } }, { [K]: ['CreatedBy', 'CreatedAt'] }, 'allowed')
cond(`${SET}: ForAnyValue with a negated operator: some value outside the set`, { 'ForAnyValue:StringNotEquals': { [K]: ['a', 'b'] } }, { [K]: ['a', 'z'] }, 'allowed')
cond(`${SET}: ForAnyValue with a negated operator: all values inside the set`, { 'ForAnyValue:StringNotEquals': { [K]: ['a', 'b'] } }, { [K]: ['a', 'b'] }, 'implicitDeny')
cond(`${SET}: ForAllValues with a negated operator: no value inside the set`, { 'ForAllValues:StringNotEquals': { [K]: ['a', 'b'] } }, { [K]: ['x', 'y'] }, 'allowed')
cond(`${SET}: ForAllValues with a negated operator: one value inside the set`, { 'ForAllValues:StringNotEquals': { [K]: ['a', 'b'] } }, { [K]: ['x', 'a'] }, 'implicitDeny')
cond(`${SET}: ForAnyValue…IfExists is true when the key is missing`, { 'ForAnyValue:StringEqualsIfExists': { [K]: ['a'] } }, {}, 'allowed')
cond(`${SET}: set operators apply to certificate .List keys`, { 'ForAnyValue:StringEquals': { 'iot:Certificate.Subject.Organization.List': ['Acme'] } }, { 'iot:Certificate.Subject.Organization.List': ['Other', 'Acme'] }, 'allowed')

// ── H. Multiple keys and values ─────────────────────────────────────────────────────────────────────────────────
const MULTI = 'IAM UG reference_policies_condition-logic-multiple-context-keys-or-values'
cond(`${MULTI}: several values of one key are ORed`, { StringEquals: { [U]: ['alice', 'bob'] } }, { [U]: 'bob' }, 'allowed')
cond(`${MULTI}: several keys under one operator are ANDed (both hold)`, { StringEquals: { [U]: 'alice', 'aws:PrincipalTag/team': 'ops' } }, { [U]: 'alice', 'aws:PrincipalTag/team': 'ops' }, 'allowed')
cond(`${MULTI}: several keys under one operator are ANDed (one fails)`, { StringEquals: { [U]: 'alice', 'aws:PrincipalTag/team': 'ops' } }, { [U]: 'alice', 'aws:PrincipalTag/team': 'dev' }, 'implicitDeny')
cond(`${MULTI}: several operators are ANDed (both hold)`, { StringEquals: { [U]: 'alice' }, Bool: { [B]: 'true' } }, { [U]: 'alice', [B]: true }, 'allowed')
cond(`${MULTI}: several operators are ANDed (one fails)`, { StringEquals: { [U]: 'alice' }, Bool: { [B]: 'true' } }, { [U]: 'alice', [B]: false }, 'implicitDeny')
cond(`${MULTI}: a negated operator over several values is a NOR (matches one)`, { StringNotEquals: { [U]: ['alice', 'bob'] } }, { [U]: 'bob' }, 'implicitDeny')
cond(`${MULTI}: a negated operator over several values is a NOR (matches none)`, { StringNotEquals: { [U]: ['alice', 'bob'] } }, { [U]: 'carol' }, 'allowed')
cond(`${MULTI}: NotIpAddress over several blocks is a NOR`, { NotIpAddress: { [IP]: ['10.0.0.0/8', '192.168.0.0/16'] } }, { [IP]: '192.168.1.1' }, 'implicitDeny')
cond(`${MULTI}: numeric values are ORed`, { NumericEquals: { [N]: ['1', '2', '3'] } }, { [N]: 2 }, 'allowed')
cond(`${MULTI}: ranges from two operators on one key are ANDed`, { NumericGreaterThan: { [N]: '10' }, NumericLessThan: { [N]: '20' } }, { [N]: 25 }, 'implicitDeny')

// ── I. Policy variables ─────────────────────────────────────────────────────────────────────────────────────────
const VAR = 'IAM UG reference_policies_variables'
const THV = 'IoT DG thing-policy-variables'
const CERTV = 'IoT DG cert-policy-variables'
const BASICV = 'IoT DG basic-policy-variables'
const thingCtx: ContextMap = {
  'iot:ClientId': 'lamp-7',
  'iot:Connection.Thing.ThingName': 'lamp-7',
  'iot:Connection.Thing.ThingTypeName': 'SmartLight',
  'iot:Connection.Thing.IsAttached': true,
  'iot:Connection.Thing.Attributes[building]': '1',
  'iot:Connection.Thing.Attributes[floor]': '3',
}
const TN = '${iot:Connection.Thing.ThingName}'
add(`${BASICV}: \${iot:ClientId} is replaced by the client id`, [[allow('iot:Connect', c('${iot:ClientId}'))]], 'iot:Connect', c('lamp-7'), 'allowed', thingCtx)
add(`${BASICV}: \${iot:ClientId} does not match another client id`, [[allow('iot:Connect', c('${iot:ClientId}'))]], 'iot:Connect', c('lamp-8'), 'implicitDeny', thingCtx)
add(`${THV}: \${iot:Connection.Thing.ThingName} in a topic`, [[allow('iot:Publish', t(`dt/${TN}/telemetry`))]], 'iot:Publish', t('dt/lamp-7/telemetry'), 'allowed', thingCtx)
add(`${THV}: \${iot:Connection.Thing.ThingName} does not match another thing's topic`, [[allow('iot:Publish', t(`dt/${TN}/telemetry`))]], 'iot:Publish', t('dt/lamp-8/telemetry'), 'implicitDeny', thingCtx)
add(`${THV}: \${iot:Connection.Thing.ThingTypeName}`, [[allow('iot:Publish', t('types/${iot:Connection.Thing.ThingTypeName}/*'))]], 'iot:Publish', t('types/SmartLight/x'), 'allowed', thingCtx)
add(`${THV}: \${iot:Connection.Thing.Attributes[name]}`, [[allow('iot:Publish', t('building/${iot:Connection.Thing.Attributes[building]}/floor/${iot:Connection.Thing.Attributes[floor]}/light/' + TN))]], 'iot:Publish', t('building/1/floor/3/light/lamp-7'), 'allowed', thingCtx)
add(`${THV}: an attribute from another floor does not match`, [[allow('iot:Publish', t('building/${iot:Connection.Thing.Attributes[building]}/floor/${iot:Connection.Thing.Attributes[floor]}/light/' + TN))]], 'iot:Publish', t('building/1/floor/4/light/lamp-7'), 'implicitDeny', thingCtx)
add(`${THV}: a missing attribute never matches`, [[allow('iot:Publish', t('room/${iot:Connection.Thing.Attributes[room]}'))]], 'iot:Publish', t('room/'), 'implicitDeny', thingCtx)
add(`${THV}: Connection.Thing.IsAttached as a Bool condition`, [[allow('iot:Connect', c(TN), { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } })]], 'iot:Connect', c('lamp-7'), 'allowed', thingCtx)
add(`${THV}: IsAttached false denies`, [[allow('iot:Connect', c('${iot:ClientId}'), { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } })]], 'iot:Connect', c('lamp-7'), 'implicitDeny', { 'iot:ClientId': 'lamp-7', 'iot:Connection.Thing.IsAttached': false })
add(`${THV}: thing variables are absent without a thing: the resource never matches`, [[allow('iot:Connect', c(TN))]], 'iot:Connect', c('lamp-7'), 'implicitDeny', { 'iot:ClientId': 'lamp-7' })
add(`${THV}: a variable in a condition value`, [[allow('iot:Connect', c('*'), { StringEquals: { 'iot:ClientId': TN } })]], 'iot:Connect', c('lamp-7'), 'allowed', thingCtx)
add(`${THV}: a variable in a condition value that differs`, [[allow('iot:Connect', c('*'), { StringEquals: { 'iot:ClientId': TN } })]], 'iot:Connect', c('lamp-7'), 'implicitDeny', { ...thingCtx, 'iot:ClientId': 'other' })
add(`${CERTV}: \${iot:Certificate.Subject.CommonName}`, [[allow('iot:Publish', t('certs/${iot:Certificate.Subject.CommonName}'))]], 'iot:Publish', t('certs/device-42'), 'allowed', { 'iot:Certificate.Subject.CommonName': 'device-42' })
add(`${CERTV}: \${iot:Certificate.Subject.Organization} in a condition`, [[allow('iot:Publish', '*', { StringEquals: { 'iot:Certificate.Subject.Organization': 'Acme' } })]], 'iot:Publish', t('x'), 'allowed', { 'iot:Certificate.Subject.Organization': 'Acme' })
add(`${CERTV}: \${iot:Certificate.Issuer.CommonName}`, [[allow('iot:Publish', t('issuers/${iot:Certificate.Issuer.CommonName}'))]], 'iot:Publish', t('issuers/Fleet CA'), 'allowed', { 'iot:Certificate.Issuer.CommonName': 'Fleet CA' })
add(`${CERTV}: \${iot:Certificate.SerialNumber}`, [[allow('iot:Publish', t('serial/${iot:Certificate.SerialNumber}'))]], 'iot:Publish', t('serial/92128'), 'allowed', { 'iot:Certificate.SerialNumber': '92128' })
add(`${CERTV}: \${iot:Certificate.Subject.AlternativeName.DNSName}`, [[allow('iot:Publish', t('dns/${iot:Certificate.Subject.AlternativeName.DNSName}'))]], 'iot:Publish', t('dns/example.com'), 'allowed', { 'iot:Certificate.Subject.AlternativeName.DNSName': 'example.com' })
add(`${CERTV}: a missing certificate field never matches`, [[allow('iot:Publish', t('ou/${iot:Certificate.Subject.OrganizationalUnit}'))]], 'iot:Publish', t('ou/'), 'implicitDeny', { 'iot:Certificate.Subject.CommonName': 'x' })
add(`${VAR}: aws:SourceIp as a variable`, [[allow('iot:Publish', t('ip/${aws:SourceIp}'))]], 'iot:Publish', t('ip/10.0.0.7'), 'allowed', { 'aws:SourceIp': '10.0.0.7' })
add(`${VAR}: aws:username as a variable`, [[allow('iot:Publish', t('users/${aws:username}/*'))]], 'iot:Publish', t('users/alice/x'), 'allowed', { 'aws:username': 'alice' })
add(`${VAR}: aws:PrincipalTag/… as a variable`, [[allow('iot:Publish', t('teams/${aws:PrincipalTag/team}/*'))]], 'iot:Publish', t('teams/ops/x'), 'allowed', { 'aws:PrincipalTag/team': 'ops' })
add(`${VAR}: variable key names are case-insensitive`, [[allow('iot:Publish', t('users/${AWS:UserName}'))]], 'iot:Publish', t('users/alice'), 'allowed', { 'aws:username': 'alice' })
add(`${VAR}: a default value is used when the key is missing`, [[allow('iot:Publish', t("users/${aws:username, 'anonymous'}"))]], 'iot:Publish', t('users/anonymous'), 'allowed', {})
add(`${VAR}: a default value is ignored when the key is present`, [[allow('iot:Publish', t("users/${aws:username, 'anonymous'}"))]], 'iot:Publish', t('users/anonymous'), 'implicitDeny', { 'aws:username': 'alice' })
add(`${VAR}: a default value is literal (its * is not a wildcard)`, [[allow('iot:Publish', t("users/${aws:username, '*'}"))]], 'iot:Publish', t('users/alice'), 'implicitDeny', {})
add(`${VAR}: \${*} is a literal *`, [[allow('iot:Publish', t('a/${*}'))]], 'iot:Publish', t('a/*'), 'allowed')
add(`${VAR}: \${*} does not act as a wildcard`, [[allow('iot:Publish', t('a/${*}'))]], 'iot:Publish', t('a/b'), 'implicitDeny')
add(`${VAR}: \${?} is a literal ?`, [[allow('iot:Publish', t('a/${?}'))]], 'iot:Publish', t('a/b'), 'implicitDeny')
add(`${VAR}: \${?} matches a literal ?`, [[allow('iot:Publish', t('a/${?}'))]], 'iot:Publish', t('a/?'), 'allowed')
add(`${VAR}: \${$} is a literal $`, [[allow('iot:Publish', t('a/${$}{x}'))]], 'iot:Publish', t('a/${x}'), 'allowed')
add(`${VAR}: a variable with no value never matches in Resource`, [[allow('iot:Publish', t('users/${aws:username}'))]], 'iot:Publish', t('users/'), 'implicitDeny', {})
add(`${VAR}: a variable with no value in a Deny's Resource does not deny`, [[allow('iot:Publish', '*'), deny('iot:Publish', t('users/${aws:username}'))]], 'iot:Publish', t('users/'), 'allowed', {})
add(`${VAR}: a variable with no value in NotResource matches nothing, so the NotResource statement applies`, [[allow('iot:*', '*'), { Effect: 'Deny', Action: 'iot:Publish', NotResource: t('users/${aws:username}/*') }]], 'iot:Publish', t('users/alice/x'), 'explicitDeny', {})
add(`${VAR}: a condition value whose variable has no value never matches`, [[allow('iot:Publish', '*', { StringEquals: { 'aws:PrincipalTag/x': '${aws:username}' } })]], 'iot:Publish', t('a'), 'implicitDeny', { 'aws:PrincipalTag/x': '' })
add(`${VAR}: a negated operator whose value's variable has no value is true`, [[allow('iot:Publish', '*', { StringNotEquals: { 'aws:PrincipalTag/x': '${aws:username}' } })]], 'iot:Publish', t('a'), 'allowed', { 'aws:PrincipalTag/x': 'v' })
add(`${VAR}: a multi-valued key cannot be substituted`, [[allow('iot:Publish', t('tags/${aws:TagKeys}'))]], 'iot:Publish', t('tags/a'), 'implicitDeny', { 'aws:TagKeys': ['a'] })
add(`${VAR}: variables work in StringLike values (substituted text literal)`, [[allow('iot:Publish', '*', { StringLike: { 'aws:PrincipalTag/home': 'homes/${aws:username}/*' } })]], 'iot:Publish', t('a'), 'allowed', { 'aws:username': 'alice', 'aws:PrincipalTag/home': 'homes/alice/x' })
add(`${VAR}: variables work in ArnLike values`, [[allow('iot:Publish', '*', { ArnLike: { 'aws:PrincipalArn': 'arn:aws:iam::*:user/${aws:username}' } })]], 'iot:Publish', t('a'), 'allowed', { 'aws:username': 'alice', 'aws:PrincipalArn': 'arn:aws:iam::1:user/alice' })
add(`${VAR}: variables are not substituted in numeric values (policy rejected otherwise; here a plain number)`, [[allow('iot:Publish', '*', { NumericLessThan: { [N]: '100' } })]], 'iot:Publish', t('a'), 'allowed', { [N]: 5 })
add(`${VAR}: an aws:CurrentTime condition (request key)`, [[allow('iot:Publish', '*', { DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } })]], 'iot:Publish', t('a'), 'allowed', { 'aws:CurrentTime': '2026-06-01T00:00:00Z' })
add(`${VAR}: aws:SecureTransport`, [[allow('iot:Publish', '*', { Bool: { 'aws:SecureTransport': 'true' } })]], 'iot:Publish', t('a'), 'allowed', { 'aws:SecureTransport': true })
add(`${VAR}: aws:MultiFactorAuthPresent (operator key)`, [[allow('iot:Publish', t('building/*/lock/*/cmd'), { Bool: { 'aws:MultiFactorAuthPresent': 'true' } })]], 'iot:Publish', t('building/1/lock/l1/cmd'), 'allowed', { 'aws:MultiFactorAuthPresent': true })
add(`${VAR}: aws:MultiFactorAuthPresent absent → Bool fails`, [[allow('iot:Publish', t('building/*/lock/*/cmd'), { Bool: { 'aws:MultiFactorAuthPresent': 'true' } })]], 'iot:Publish', t('building/1/lock/l1/cmd'), 'implicitDeny', {})
add('IAM UG reference_policies_elements_version: with 2008-10-17 a variable is literal text', [[allow('iot:Publish', t('users/${aws:username}'))]], 'iot:Publish', t('users/alice'), 'implicitDeny', { 'aws:username': 'alice' }, { version: '2008-10-17' })
add('IAM UG reference_policies_elements_version: with 2008-10-17 the literal text matches itself', [[allow('iot:Publish', t('users/${aws:username}'))]], 'iot:Publish', t('users/${aws:username}'), 'allowed', { 'aws:username': 'alice' }, { version: '2008-10-17' })
add('IAM UG reference_policies_elements_version: without Version, 2008-10-17 applies', [[allow('iot:Publish', t('users/${aws:username}'))]], 'iot:Publish', t('users/alice'), 'implicitDeny', { 'aws:username': 'alice' }, { version: null })
add('IAM UG reference_policies_elements_version: in 2008-10-17 a * inside ${…} is still a wildcard', [[allow('iot:Publish', t('a/${*}'))]], 'iot:Publish', t('a/${xyz}'), 'allowed', {}, { version: '2008-10-17' })

// ── J. Documented traps ─────────────────────────────────────────────────────────────────────────────────────────
add(`${PUBSUB}: trap — Allow topicfilter/a/* + Deny topicfilter/a/restricted/* still allows subscribing to a/#`,
  [[allow('iot:Subscribe', tf('a/*')), deny('iot:Subscribe', tf('a/restricted/*')), allow('iot:Receive', t('a/*'))]], 'iot:Subscribe', tf('a/#'), 'allowed')
add(`${PUBSUB}: trap — … and then receiving a/restricted/x`,
  [[allow('iot:Subscribe', tf('a/*')), deny('iot:Subscribe', tf('a/restricted/*')), allow('iot:Receive', t('a/*'))]], 'iot:Receive', t('a/restricted/x'), 'allowed')
add(`${PUBSUB}: the documented fix — Receive with NotResource topic/a/restricted/*`,
  [[allow('iot:Subscribe', tf('a/*')), { Effect: 'Allow', Action: 'iot:Receive', NotResource: t('a/restricted/*') }]], 'iot:Receive', t('a/restricted/x'), 'implicitDeny')
add(`${PUBSUB}: the documented fix still lets other topics through`,
  [[allow('iot:Subscribe', tf('a/*')), { Effect: 'Allow', Action: 'iot:Receive', NotResource: t('a/restricted/*') }]], 'iot:Receive', t('a/public/x'), 'allowed')
add(`${PUBSUB}: + in a Deny only denies the literal filter`,
  [[allow('iot:Subscribe', tf('sensors/*')), deny('iot:Subscribe', tf('sensors/+/secret'))]], 'iot:Subscribe', tf('sensors/dev1/secret'), 'allowed')
add(`${BASICV}: pitfall — client id "+" in topicfilter/my/\${iot:ClientId}/topic is refused (Thingward hardening; AWS would allow)`,
  [[allow('iot:Subscribe', tf('my/${iot:ClientId}/topic'))]], 'iot:Subscribe', tf('my/+/topic'), 'implicitDeny', { 'iot:ClientId': '+' })
add(`${BASICV}: pitfall — client id "#" is refused in an Allow resource (Thingward hardening)`,
  [[allow('iot:Subscribe', tf('my/${iot:ClientId}'))]], 'iot:Subscribe', tf('my/#'), 'implicitDeny', { 'iot:ClientId': '#' })
add(`${BASICV}: a hostile value in a Deny is kept literal, so the Deny still applies`,
  [[allow('iot:Subscribe', '*'), deny('iot:Subscribe', tf('my/${iot:ClientId}'))]], 'iot:Subscribe', tf('my/#'), 'explicitDeny', { 'iot:ClientId': '#' })
add(`${CERTV}: a certificate value containing * is not substituted into an Allow`,
  [[allow('iot:Publish', t('cn/${iot:Certificate.Subject.CommonName}'))]], 'iot:Publish', t('cn/*'), 'implicitDeny', { 'iot:Certificate.Subject.CommonName': '*' })
add(`${SET}: trap — ForAllValues in an Allow also allows requests without the key`,
  [[allow('iot:Publish', '*', { 'ForAllValues:StringEquals': { [K]: ['safe'] } })]], 'iot:Publish', t('a'), 'allowed', {})
add(`${NRES}: trap — Allow with NotResource also grants unrelated resource types`,
  [[{ Effect: 'Allow', Action: 'iot:*', NotResource: t('admin/*') }]], 'iot:Connect', c('anyone'), 'allowed')
add(`${NACT}: trap — Allow with NotAction grants actions never thought of`,
  [[{ Effect: 'Allow', NotAction: 'iot:Publish', Resource: '*' }]], 'iot:DeleteThingShadow', th('x'), 'allowed')

// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────────

function namedPolicies (kase: Case): NamedPolicy[] {
  return kase.policies.map((statements, i) => {
    const doc: Record<string, Json> = { Statement: statements.map(s => JSON.parse(JSON.stringify(s)) as Json) }
    const version = kase.version === undefined ? '2012-10-17' : kase.version
    if (version !== null) doc.Version = version
    return { name: `p${i}`, versionId: '1', document: parsePolicy(JSON.stringify(doc)) }
  })
}

function split (ctx: ContextMap): { session: ContextMap, request: ContextMap } {
  const session: Record<string, ContextMap[string]> = {}
  const request: Record<string, ContextMap[string]> = {}
  for (const [k, v] of Object.entries(ctx)) {
    const l = k.toLowerCase()
    if (l === 'iot:clientid' || l.startsWith('iot:connection.') || l.startsWith('iot:certificate.')) session[k] = v
    else request[k] = v
  }
  return { session, request }
}

test('the conformance suite has at least 200 cases, each citing an AWS rule', () => {
  assert.ok(CASES.length >= 200, `only ${CASES.length} cases`)
  for (const k of CASES) assert.match(k.rule, /^(IAM UG|IoT DG) [a-z]/)
})

for (const [i, kase] of CASES.entries()) {
  test(`#${i + 1} ${kase.rule}`, () => {
    const policies = namedPolicies(kase)
    const ctx = kase.ctx ?? {}
    const { session, request } = split(ctx)
    const ref = evaluate(policies, { action: kase.action, resource: kase.resource, context: effectiveContext(session, request) })
    assert.equal(ref.effect, kase.expect, 'reference interpreter')
    if (kase.sid !== undefined) assert.equal(ref.sid, kase.sid, 'reference deciding statement')
    const az = compilePolicies(policies, session, { arn: ARN })
    const d = az.authorize(kase.action, kase.resource, request)
    assert.equal(d.effect, kase.expect, 'compiled, request-time keys')
    assert.equal(d.sid, ref.sid, 'compiled and reference agree on the deciding statement')
    const folded = compilePolicies(policies, ctx, { arn: ARN }).authorize(kase.action, kase.resource)
    assert.equal(folded.effect, kase.expect, 'compiled, all keys bound at compile time')
    if (kase.resource.startsWith(`${H}topic/`)) {
      assert.equal(az.authorizeTopic(kase.action, kase.resource.slice(`${H}topic/`.length), request).effect, kase.expect, 'authorizeTopic')
    }
  })
}
