/**
 * Analyzers and integration-facing API of the policy engine: lint findings, blast radius over the seed fleet,
 * role templates, TestAuthorization output, session variables, invalidation events and compiled-authorizer
 * properties the gateway relies on.
 */
import assert from 'node:assert/strict'
import test from 'node:test'
import { ManualClock } from '../src/core/index.ts'
import {
  affectsSession, buildSessionVariables, collectEffectivePolicies, compilePolicies, computeBlastRadius, decisionRecord,
  describeDecision, formatBlastRadiusReport, formatPercent, IMPLICIT_DENY_DECISION, isPolicyChange, LINT_RULES, lintPolicy,
  operatorTemplate, parsePolicy, ROLE_INFO, ROLE_TEMPLATES, ROLES, roleTemplates, SEED_ARN, seedFleet, SHARED_CREDENTIAL_POLICY,
  testAuthorization,
} from '../src/policy/index.ts'
import type { FleetSnapshot, LintRuleId, NamedPolicy, SessionDependencies } from '../src/policy/index.ts'

const ARN = SEED_ARN
const H = `arn:aws:iot:${ARN.region}:${ARN.accountId}:`
const P = (name: string, statements: unknown[], version = '2012-10-17'): NamedPolicy =>
  ({ name, versionId: '1', document: parsePolicy(JSON.stringify({ Version: version, Statement: statements })) })
const ids = (p: NamedPolicy): LintRuleId[] => lintPolicy(p.document).map(f => f.id)

// ── Lint ────────────────────────────────────────────────────────────────────────────────────────────────────────

test('lint rule ids and names are stable', () => {
  assert.deepEqual(Object.entries(LINT_RULES).map(([id, r]) => `${id}:${r.name}`), [
    'TWP001:ALLOW_ALL_IOT_ACTIONS', 'TWP002:ALLOW_RESOURCE_STAR', 'TWP003:WILDCARD_REACHES_OTHER_DEVICES',
    'TWP004:SUBSCRIBE_DENY_BYPASSED_BY_WILDCARD', 'TWP005:SUBSCRIBE_WILDCARD_RECEIVE_UNRESTRICTED',
    'TWP006:CLIENT_ID_VARIABLE_WITHOUT_PINNED_CONNECT', 'TWP007:ALLOW_WITH_NOT_ACTION', 'TWP008:ALLOW_WITH_NOT_RESOURCE',
    'TWP009:CONDITION_NEVER_TRUE', 'TWP010:MQTT_WILDCARD_IN_DENY', 'TWP011:MQTT_WILDCARD_LITERAL_IN_ALLOW',
    'TWP012:FOR_ALL_VALUES_WITH_ALLOW', 'TWP013:NO_VERSION', 'TWP014:VARIABLES_IGNORED_OLD_VERSION',
    'TWP015:UNKNOWN_CONDITION_KEY', 'TWP016:WILDCARD_WITHOUT_LIKE_OPERATOR', 'TWP017:RESOURCE_TYPE_MISMATCH',
    'TWP018:MULTIVALUED_KEY_WITHOUT_SET_OPERATOR', 'TWP019:NON_IOT_ACTION',
  ])
})

test('the role templates lint clean', () => {
  for (const text of [...Object.values(ROLE_TEMPLATES), ...Object.values(roleTemplates(ARN))]) {
    assert.deepEqual(lintPolicy(parsePolicy(text)), [])
  }
})

const LINT_CASES: [string, LintRuleId, NamedPolicy, string][] = [
  ['Device Defender IOT_POLICY_OVERLY_PERMISSIVE_CHECK: iot:*', 'TWP001', P('a', [{ Effect: 'Allow', Action: 'iot:*', Resource: `${H}topic/x` }]), 'Statement[0].Action'],
  ['Device Defender IOT_POLICY_OVERLY_PERMISSIVE_CHECK: Resource *', 'TWP002', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }]), 'Statement[0].Resource'],
  ['policy.md §4.6: a variable-free * in the device segment', 'TWP003', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: [`${H}topic/own`, `${H}topic/dt/*/telemetry`] }]), 'Statement[0].Resource[1]'],
  ['policy.md §4.6: a wildcard before the thing variable', 'TWP003', P('a', [{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/*/\${iot:Connection.Thing.ThingName}` }]), 'Statement[0].Resource'],
  ['IoT DG pub-sub-policy: Allow a/* + Deny a/restricted/* trap', 'TWP004', P('a', [
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/a/*` },
    { Effect: 'Deny', Action: 'iot:Subscribe', Resource: `${H}topicfilter/a/restricted/*` },
    { Effect: 'Allow', Action: 'iot:Receive', Resource: `${H}topic/a/*` }]), 'Statement[1].Resource'],
  ['IoT DG pub-sub-policy: wildcard Subscribe with unbounded Receive', 'TWP005', P('a', [
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/fleet/*` },
    { Effect: 'Allow', Action: 'iot:Receive', Resource: `${H}topic/fleet/*` }]), 'Statement[0].Resource'],
  ['IoT DG basic-policy-variables: ${iot:ClientId} with unpinned Connect', 'TWP006', P('a', [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${H}client/*` },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/my/\${iot:ClientId}/topic` }]), 'Statement[1].Resource'],
  ['Parliament NotAction auditor', 'TWP007', P('a', [{ Effect: 'Allow', NotAction: 'iot:Connect', Resource: `${H}topic/x` }]), 'Statement[0].NotAction'],
  ['Parliament NotResource auditor', 'TWP008', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', NotResource: `${H}topic/x` }]), 'Statement[0].NotResource'],
  ['IAM UG condition operators: Null true with a positive operator', 'TWP009', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x`, Condition: { Null: { 'aws:username': 'true' }, StringEquals: { 'aws:username': 'a' } } }]), 'Statement[0].Condition.StringEquals.aws:username'],
  ['IAM UG condition operators: empty numeric range', 'TWP009', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x`, Condition: { NumericLessThan: { 'aws:MultiFactorAuthAge': '5' }, NumericGreaterThan: { 'aws:MultiFactorAuthAge': '10' } } }]), 'Statement[0].Condition.NumericGreaterThan.aws:MultiFactorAuthAge'],
  ['IAM UG condition operators: a key that is never present', 'TWP009', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x`, Condition: { StringEquals: { 'iot:ThingName': 'a' } } }]), 'Statement[0].Condition.StringEquals.iot:ThingName'],
  ['Device Defender POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT', 'TWP010', P('a', [{ Effect: 'Deny', Action: 'iot:Subscribe', Resource: `${H}topicfilter/a/#` }]), 'Statement[0].Resource'],
  ['IoT DG iot-policy-variables: + and # are literal', 'TWP011', P('a', [{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/\${iot:Connection.Thing.ThingName}/+/x` }]), 'Statement[0].Resource'],
  ['Access Analyzer: ForAllValues with Allow', 'TWP012', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x`, Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': 'a' } } }]), 'Statement[0].Condition.ForAllValues:StringEquals.aws:TagKeys'],
  ['Parliament NO_VERSION', 'TWP013', { name: 'a', versionId: '1', document: parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x` }] })) }, '$'],
  ['Access Analyzer: variable not supported in this version', 'TWP014', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/\${iot:ClientId}` }], '2008-10-17'), 'Version'],
  ['Parliament UNKNOWN_CONDITION_FOR_ACTION', 'TWP015', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x`, Condition: { StringNotEquals: { 'aws:Usename': 'a' } } }]), 'Statement[0].Condition.StringNotEquals.aws:Usename'],
  ['Access Analyzer: wildcard without a like operator', 'TWP016', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x`, Condition: { StringEquals: { 'aws:username': 'adm*' } } }]), 'Statement[0].Condition.StringEquals.aws:username'],
  ['IoT DG iot-policy-actions: Subscribe checks topicfilter/', 'TWP017', P('a', [{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topic/\${iot:Connection.Thing.ThingName}` }]), 'Statement[0].Resource'],
  ['IAM UG multi-valued keys need a set operator', 'TWP018', P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/x`, Condition: { StringEquals: { 'iot:Certificate.Subject.Organization.List': 'Acme' } } }]), 'Statement[0].Condition.StringEquals["iot:Certificate.Subject.Organization.List"]'],
  ['IoT policies: other services have no effect', 'TWP019', P('a', [{ Effect: 'Allow', Action: 's3:GetObject', Resource: `${H}topic/x` }]), 'Statement[0].Action'],
]

for (const [source, id, policy, path] of LINT_CASES) {
  test(`lint ${id} (${source})`, () => {
    const f = lintPolicy(policy.document).find(x => x.id === id)
    assert.ok(f !== undefined, `expected ${id}, got ${ids(policy).join(', ')}`)
    assert.equal(f.path, path)
    assert.equal(f.severity, LINT_RULES[id].severity)
    assert.equal(f.rule, LINT_RULES[id].name)
  })
}

test('lint: the documented fix for the Subscribe trap (Receive with NotResource) clears TWP004', () => {
  const fixed = P('a', [
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/a/*` },
    { Effect: 'Deny', Action: 'iot:Subscribe', Resource: `${H}topicfilter/a/restricted/*` },
    { Effect: 'Allow', Action: 'iot:Receive', NotResource: `${H}topic/a/restricted/*` }])
  assert.ok(!ids(fixed).includes('TWP004'))
})

test('lint: Connect pinned to the thing name clears TWP006', () => {
  const pinned = P('a', [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${H}client/\${iot:Connection.Thing.ThingName}` },
    { Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/dt/\${iot:ClientId}` }])
  assert.ok(!ids(pinned).includes('TWP006'))
})

test('lint: the shared credential is flagged for all actions and every resource', () => {
  const found = ids({ name: 's', versionId: '1', document: parsePolicy(SHARED_CREDENTIAL_POLICY) })
  assert.ok(found.includes('TWP001') && found.includes('TWP002'))
})

// ── Templates and blast radius ──────────────────────────────────────────────────────────────────────────────────

test('role templates: four roles, each within the 2048-character IoT limit, one policy per role for the fleet', () => {
  assert.deepEqual([...ROLES], ['temperature-sensor', 'occupancy-sensor', 'smart-light', 'door-lock'])
  for (const r of ROLES) {
    assert.ok(ROLE_TEMPLATES[r].replace(/\s/g, '').length <= 2048, r)
    assert.ok(ROLE_TEMPLATES[r].includes('${iot:Connection.Thing.Attributes[building]}'))
    assert.ok(ROLE_TEMPLATES[r].includes('${iot:Connection.Thing.Attributes[floor]}'))
    assert.ok(typeof ROLE_INFO[r].thingType === 'string' && typeof ROLE_INFO[r].prefix === 'string')
  }
})

test('seed fleet: 20 floors × (40 + 30 + 20 + 10) = 2,000 devices', () => {
  const fleet = seedFleet({ sharedCredential: false })
  assert.equal(fleet.things.length, 2000)
  assert.equal(fleet.principals.length, 2000)
  const count = (prefix: string): number => fleet.things.filter(t => t.name.startsWith(`${prefix}-`)).length
  assert.deepEqual([count('temp'), count('occ'), count('light'), count('lock')], [800, 600, 400, 200])
})

test('role semantics on the seed: each role reaches exactly its own topics and shadow', () => {
  const fleet = seedFleet()
  const session = (name: string): ReturnType<typeof buildSessionVariables> => {
    const t = fleet.things.find(x => x.name === name)
    assert.ok(t !== undefined)
    return buildSessionVariables({ clientId: name, thing: { name, typeName: t.typeName, attributes: t.attributes } })
  }
  const az = (name: string, role: keyof typeof fleet.rolePolicies): ReturnType<typeof compilePolicies> =>
    compilePolicies([fleet.rolePolicies[role]], session(name), { arn: ARN })
  const temp = az('temp-05-001', 'temperature-sensor')
  assert.ok(temp.authorizeTopic('iot:Publish', 'building/1/floor/5/temperature/temp-05-001').allowed)
  assert.ok(!temp.authorizeTopic('iot:Publish', 'building/1/floor/5/temperature/temp-05-002').allowed)
  assert.ok(!temp.authorizeTopic('iot:Publish', 'building/1/floor/6/temperature/temp-05-001').allowed)
  assert.ok(!temp.authorize('iot:Subscribe', `${H}topicfilter/building/1/floor/5/temperature/temp-05-001`).allowed)
  assert.ok(!temp.authorize('iot:GetThingShadow', `${H}thing/temp-05-001`).allowed)
  const occ = az('occ-02-003', 'occupancy-sensor')
  assert.ok(occ.authorize('iot:GetThingShadow', `${H}thing/occ-02-003`).allowed)
  assert.ok(!occ.authorize('iot:UpdateThingShadow', `${H}thing/occ-02-003`).allowed)
  assert.ok(occ.authorizeTopic('iot:Receive', '$aws/things/occ-02-003/shadow/get/accepted').allowed)
  assert.ok(!occ.authorizeTopic('iot:Publish', '$aws/things/occ-02-003/shadow/update').allowed)
  const light = az('light-09-020', 'smart-light')
  assert.ok(light.authorizeTopic('iot:Publish', 'building/1/floor/9/light/light-09-020/status').allowed)
  assert.ok(light.authorize('iot:Subscribe', `${H}topicfilter/building/1/floor/9/light/light-09-020/cmd`).allowed)
  assert.ok(!light.authorize('iot:Subscribe', `${H}topicfilter/building/1/floor/9/light/+/cmd`).allowed)
  assert.ok(light.authorizeTopic('iot:Receive', 'building/1/floor/9/light/light-09-020/cmd').allowed)
  assert.ok(light.authorize('iot:UpdateThingShadow', `${H}thing/light-09-020`).allowed)
  assert.ok(!light.authorize('iot:UpdateThingShadow', `${H}thing/light-09-019`).allowed)
  const lock = az('lock-20-010', 'door-lock')
  assert.ok(lock.authorizeTopic('iot:Publish', 'building/1/floor/20/lock/lock-20-010/audit').allowed)
  assert.ok(!lock.authorizeTopic('iot:Publish', 'building/1/floor/20/lock/lock-20-010/status').allowed)
  assert.ok(lock.authorize('iot:Connect', `${H}client/lock-20-010`).allowed)
  assert.ok(!lock.authorize('iot:Connect', `${H}client/lock-20-009`).allowed)
})

test('operator template: lock commands need MFA, light commands do not', () => {
  const op = compilePolicies([{ name: 'op', versionId: '1', document: parsePolicy(operatorTemplate(ARN)) }], { 'aws:username': 'alice' }, { arn: ARN })
  assert.ok(op.authorizeTopic('iot:Publish', 'building/1/floor/2/light/light-02-001/cmd').allowed)
  assert.ok(!op.authorizeTopic('iot:Publish', 'building/1/floor/2/lock/lock-02-001/cmd').allowed)
  assert.ok(!op.authorizeTopic('iot:Publish', 'building/1/floor/2/lock/lock-02-001/cmd', { 'aws:MultiFactorAuthPresent': false }).allowed)
  assert.ok(op.authorizeTopic('iot:Publish', 'building/1/floor/2/lock/lock-02-001/cmd', { 'aws:MultiFactorAuthPresent': true }).allowed)
  assert.equal(op.cacheable, false)
})

test('blast radius on the seed fleet: every device reaches 1/2,000 (0.05 %), the shared credential 100 %', () => {
  const report = computeBlastRadius(seedFleet())
  assert.equal(report.totalThings, 2000)
  const shared = report.principals[0]
  assert.equal(shared.principalId, 'shared-fleet-credential')
  assert.equal(formatPercent(shared.things.share), '100 %')
  for (const cls of ['publish', 'receive', 'shadowRead', 'shadowWrite', 'connectAs', 'topics'] as const) assert.equal(shared[cls].share, 1, cls)
  const devices = report.principals.slice(1)
  assert.equal(devices.length, 2000)
  for (const d of devices) {
    assert.equal(d.things.count, 1, d.principalId)
    assert.equal(formatPercent(d.things.share), '0.05 %')
    assert.equal(d.connectAs.count, 1)
    assert.equal(d.clientIdUnpinned, false)
  }
  const lines = formatBlastRadiusReport(report)
  assert.match(lines.join('\n'), /shared-fleet-credential +things 2000\/2000 \(100 %\)/)
  for (const role of ROLES) assert.match(lines.join('\n'), new RegExp(`${role} +×\\d+ +every principal reaches 1/2000 things \\(0\\.05 %\\)`))
})

test('blast radius: an unpinned client id makes ${iot:ClientId} attacker-chosen', () => {
  const things = ['dev-1', 'dev-2', 'dev-3', 'dev-4'].map(name => ({ name, topics: [`dt/${name}/telemetry`] }))
  const fleet: FleetSnapshot = {
    arn: ARN,
    things,
    principals: [
      { id: 'pinned', thingName: 'dev-1', policies: [P('p', [
        { Effect: 'Allow', Action: 'iot:Connect', Resource: `${H}client/\${iot:Connection.Thing.ThingName}` },
        { Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/dt/\${iot:ClientId}/*` }])] },
      { id: 'unpinned', thingName: 'dev-1', policies: [P('u', [
        { Effect: 'Allow', Action: 'iot:Connect', Resource: `${H}client/*` },
        { Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/dt/\${iot:ClientId}/*` }])] },
    ],
  }
  const report = computeBlastRadius(fleet)
  const byId = new Map(report.principals.map(r => [r.principalId, r]))
  assert.equal(byId.get('pinned')?.publish.count, 1)
  assert.equal(byId.get('unpinned')?.clientIdUnpinned, true)
  assert.equal(byId.get('unpinned')?.publish.count, 4)
  assert.equal(byId.get('unpinned')?.connectAs.count, 4)
  assert.equal(report.principals[0].principalId, 'unpinned')
})

test('blast radius: request-time conditions are assumed satisfiable; a Deny on them assumed not to apply', () => {
  const things = [{ name: 'a', topics: ['t/a'] }, { name: 'b', topics: ['t/b'] }]
  const fleet: FleetSnapshot = {
    arn: ARN,
    things,
    principals: [{ id: 'x', policies: [P('x', [
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/t/*`, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } },
      { Effect: 'Deny', Action: 'iot:Publish', Resource: `${H}topic/t/b`, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }])] }],
  }
  assert.equal(computeBlastRadius(fleet).principals[0].publish.count, 2)
})

test('blast radius: read access is Subscribe ∩ Receive', () => {
  const things = [{ name: 'a', topics: ['t/a'] }, { name: 'b', topics: ['t/b'] }]
  const mk = (statements: unknown[]): FleetSnapshot => ({ arn: ARN, things, principals: [{ id: 'x', policies: [P('x', statements)] }] })
  assert.equal(computeBlastRadius(mk([{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/t/*` }])).principals[0].receive.count, 0)
  assert.equal(computeBlastRadius(mk([{ Effect: 'Allow', Action: 'iot:Receive', Resource: `${H}topic/t/*` }])).principals[0].receive.count, 0)
  assert.equal(computeBlastRadius(mk([
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/t/#` },
    { Effect: 'Allow', Action: 'iot:Receive', Resource: `${H}topic/t/*` }])).principals[0].receive.count, 2)
})

test('formatPercent', () => {
  assert.equal(formatPercent(1), '100 %')
  assert.equal(formatPercent(1 / 2000), '0.05 %')
  assert.equal(formatPercent(1 / 3), '33.33 %')
  assert.equal(formatPercent(0), '0 %')
  assert.equal(formatPercent(1 / 200000), '0.0005 %')
})

// ── TestAuthorization and explanations ──────────────────────────────────────────────────────────────────────────

test('testAuthorization returns the AWS TestAuthorization shape', () => {
  const policies = [
    P('allow-own', [{ Sid: 'Own', Effect: 'Allow', Action: ['iot:Publish', 'iot:Connect'], Resource: [`${H}topic/dt/\${iot:ClientId}/*`, `${H}client/\${iot:ClientId}`] }]),
    P('deny-admin', [{ Sid: 'NoAdmin', Effect: 'Deny', Action: 'iot:Publish', Resource: `${H}topic/dt/*/admin` }]),
    P('mfa', [{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: '*', Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } } }]),
  ]
  const out = testAuthorization({
    arn: ARN,
    policies,
    session: buildSessionVariables({ clientId: 'dev-1' }),
    authInfos: [
      { actionType: 'PUBLISH', resources: [`${H}topic/dt/dev-1/x`] },
      { actionType: 'PUBLISH', resources: [`${H}topic/dt/dev-1/admin`] },
      { actionType: 'SUBSCRIBE', resources: [`${H}topicfilter/dt/dev-1/x`] },
      { actionType: 'CONNECT', resources: [`${H}client/dev-1`, `${H}client/dev-2`] },
    ],
  })
  const [pub, admin, sub, conn] = out.authResults
  assert.deepEqual(pub, {
    authInfo: { actionType: 'PUBLISH', resources: [`${H}topic/dt/dev-1/x`] },
    allowed: { policies: [{ policyName: 'allow-own', policyArn: `${H}policy/allow-own` }] },
    denied: { implicitDeny: { policies: [] }, explicitDeny: { policies: [] } },
    authDecision: 'ALLOWED',
    missingContextValues: [],
  })
  assert.equal(admin.authDecision, 'EXPLICIT_DENY')
  assert.deepEqual(admin.denied.explicitDeny.policies.map(p => p.policyName), ['deny-admin'])
  assert.equal(sub.authDecision, 'IMPLICIT_DENY')
  assert.deepEqual(sub.missingContextValues, ['aws:MultiFactorAuthPresent'])
  assert.deepEqual(sub.denied.implicitDeny.policies.map(p => p.policyName), ['allow-own', 'deny-admin', 'mfa'])
  assert.equal(conn.authDecision, 'IMPLICIT_DENY', 'one of two resources is not allowed')
})

test('decisions name the deciding policy, version and statement; audit records and log lines', () => {
  const az = compilePolicies([{ ...P('p', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }, { Sid: 'NoX', Effect: 'Deny', Action: 'iot:Publish', Resource: `${H}topic/x` }]), versionId: '3' }])
  const allowed = az.authorize('iot:Publish', `${H}topic/y`)
  assert.deepEqual(decisionRecord(allowed), { decision: 'allowed', policyName: 'p', policyVersion: '3', statement: '#0' })
  const denied = az.authorize('iot:Publish', `${H}topic/x`)
  assert.deepEqual(decisionRecord(denied), { decision: 'explicitDeny', policyName: 'p', policyVersion: '3', statement: 'NoX' })
  assert.equal(describeDecision(denied), 'explicitDeny by policy p v3 statement NoX')
  assert.equal(describeDecision(az.authorize('iot:Connect', `${H}client/x`)), 'implicitDeny: no statement matched')
  const ex = az.explain('iot:Publish', `${H}topic/x`)
  assert.deepEqual([ex.allows.length, ex.denies.length, ex.sid], [1, 1, 'NoX'])
})

// ── Compiled authorizer properties ──────────────────────────────────────────────────────────────────────────────

test('compiled decisions are pre-built frozen values: the same object for the same outcome', () => {
  const az = compilePolicies([P('p', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/a/*` }])], {}, { arn: ARN })
  const a = az.authorize('iot:Publish', `${H}topic/a/1`)
  assert.equal(az.authorize('iot:Publish', `${H}topic/a/2`), a)
  assert.equal(az.authorizeTopic('iot:Publish', 'a/3'), a)
  assert.ok(Object.isFrozen(a))
  assert.equal(az.authorize('iot:Publish', `${H}topic/b`), IMPLICIT_DENY_DECISION)
  assert.equal(az.cacheable, true)
})

test('compiled: session-bound conditions fold; request-time ones make the authorizer non-cacheable', () => {
  const folded = compilePolicies([P('p', [{ Effect: 'Allow', Action: 'iot:*', Resource: '*', Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } } }])], { 'iot:Connection.Thing.IsAttached': true })
  assert.equal(folded.cacheable, true)
  const timed = compilePolicies([P('p', [{ Effect: 'Allow', Action: 'iot:*', Resource: '*', Condition: { DateLessThan: { 'aws:CurrentTime': '2026-01-02T00:00:00Z' } } }])], {}, { clock: new ManualClock(Date.UTC(2026, 0, 1)) })
  assert.equal(timed.cacheable, false)
  assert.ok(timed.authorize('iot:Publish', `${H}topic/a`).allowed, 'aws:CurrentTime from the clock')
  assert.ok(!timed.authorize('iot:Publish', `${H}topic/a`, { 'aws:CurrentTime': '2026-02-01T00:00:00Z' }).allowed, 'the request value wins over the clock')
})

test('compiled: a request cannot override session-bound identity keys', () => {
  const az = compilePolicies([P('p', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/\${iot:ClientId}` }])], { 'iot:ClientId': 'dev-1' })
  assert.ok(!az.authorize('iot:Publish', `${H}topic/dev-2`, { 'iot:ClientId': 'dev-2' }).allowed)
  const noThing = compilePolicies([P('p', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/\${iot:Connection.Thing.ThingName}` }])], { 'iot:ClientId': 'dev-1' })
  assert.ok(!noThing.authorize('iot:Publish', `${H}topic/dev-1`, { 'iot:Connection.Thing.ThingName': 'dev-1' }).allowed)
})

test('compiled: allowedResourcePrefixes bounds every grant', () => {
  const fleet = seedFleet({ sharedCredential: false })
  const t = fleet.things[0]
  const az = compilePolicies([fleet.rolePolicies['temperature-sensor']], buildSessionVariables({ clientId: t.name, thing: { name: t.name, attributes: t.attributes } }), { arn: ARN })
  assert.deepEqual(az.allowedResourcePrefixes('iot:Publish'), [`${H}topic/building/1/floor/1/temperature/${t.name}`])
  assert.equal(compilePolicies([P('s', [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }])]).allowedResourcePrefixes('iot:Publish'), undefined)
})

test('compiled: many distinct action strings are answered correctly beyond the action cache', () => {
  const az = compilePolicies([P('p', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }])], {}, { actionCacheSize: 4 })
  for (let i = 0; i < 50; i++) assert.equal(az.authorize(`iot:Other${i}`, `${H}topic/a`).allowed, false)
  assert.equal(az.authorize('IOT:PUBLISH', `${H}topic/a`).allowed, true)
})

test('compiled: authorizeTopic needs the ARN context', () => {
  assert.throws(() => compilePolicies([]).authorizeTopic('iot:Publish', 'a'), TypeError)
})

// ── Sessions and invalidation ───────────────────────────────────────────────────────────────────────────────────

test('IoT DG thing-policy-variables: thing variables only when the client id is the thing name (or exclusive)', () => {
  const thing = { name: 'lamp-1', typeName: 'SmartLight', attributes: { floor: '3', Floor: '4', building: '1' } }
  const bound = buildSessionVariables({ clientId: 'lamp-1', thing, sourceIp: '10.0.0.7' })
  assert.equal(bound['iot:Connection.Thing.ThingName'], 'lamp-1')
  assert.equal(bound['iot:Connection.Thing.IsAttached'], true)
  assert.equal(bound['iot:Connection.Thing.Attributes[building]'], '1')
  assert.equal(bound['iot:Connection.Thing.Attributes[floor]'], undefined, 'attribute names colliding ignoring case are dropped')
  assert.equal(bound['aws:SourceIp'], '10.0.0.7')
  const other = buildSessionVariables({ clientId: 'other', thing })
  assert.equal(other['iot:Connection.Thing.ThingName'], undefined)
  assert.equal(other['iot:Connection.Thing.IsAttached'], false)
  const exclusive = buildSessionVariables({ clientId: 'other', thing, exclusiveThing: true })
  assert.equal(exclusive['iot:Connection.Thing.ThingName'], 'lamp-1')
})

test('IoT DG cert-policy-variables: first value, .1…, and .List (at most 5)', () => {
  const v = buildSessionVariables({ clientId: 'c', certificate: { subject: { CommonName: ['dev'], Organization: ['A', 'B', 'C', 'D', 'E', 'F'] }, serialNumber: '01' } })
  assert.equal(v['iot:Certificate.Subject.CommonName'], 'dev')
  assert.equal(v['iot:Certificate.Subject.Organization'], 'A')
  assert.equal(v['iot:Certificate.Subject.Organization.1'], 'B')
  assert.deepEqual(v['iot:Certificate.Subject.Organization.List'], ['A', 'B', 'C', 'D', 'E'])
  assert.equal(v['iot:Certificate.SerialNumber'], '01')
})

test('IoT DG thing-groups: group policies apply only when the client id is the thing name', () => {
  const cert = P('cert', [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }])
  const group = P('group', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }])
  const parent = P('parent', [{ Effect: 'Allow', Action: 'iot:Receive', Resource: '*' }])
  const groups = [{ groupName: 'g', policies: [group] }, { groupName: 'root', policies: [parent, group] }]
  assert.deepEqual(collectEffectivePolicies({ certificatePolicies: [cert], thingGroups: groups, thingName: 't', clientId: 't' }).map(p => p.name), ['cert', 'group', 'parent'])
  assert.deepEqual(collectEffectivePolicies({ certificatePolicies: [cert], thingGroups: groups, thingName: 't', clientId: 'x' }).map(p => p.name), ['cert'])
  assert.deepEqual(collectEffectivePolicies({ certificatePolicies: [cert], thingGroups: groups, thingName: 't', clientId: 'x', exclusiveThing: true }).map(p => p.name), ['cert', 'group', 'parent'])
})

test('invalidation: which changes affect a session', () => {
  const deps: SessionDependencies = {
    certificateId: 'abc',
    certificateArn: `${H}cert/abc`,
    thingName: 'lamp-1',
    groupNames: new Set(['lights', 'building-1']),
    policyNames: new Set(['role-smart-light']),
  }
  const yes = [
    { type: 'policy.attachment', policyName: 'new', target: `${H}cert/abc`, attached: true },
    { type: 'policy.attachment', policyName: 'new', target: `${H}thinggroup/building-1`, attached: true },
    { type: 'policy.attachment', policyName: 'role-smart-light', target: `${H}cert/other`, attached: false },
    { type: 'policy.default-version', policyName: 'role-smart-light', versionId: 2 },
    { type: 'policy.deleted', policyName: 'role-smart-light' },
    { type: 'thing.group', thingName: 'lamp-1', groupName: 'x', member: true },
    { type: 'thing.updated', thingName: 'lamp-1' },
    { type: 'thing.principal', thingName: 'lamp-2', principal: `${H}cert/abc`, attached: false },
    { type: 'thing-group.parent', groupName: 'lights', parentGroupName: 'building-2' },
    { type: 'certificate.status', certificateId: 'abc', status: 'REVOKED' },
  ] as const
  const no = [
    { type: 'policy.attachment', policyName: 'new', target: `${H}cert/other`, attached: true },
    { type: 'policy.default-version', policyName: 'other', versionId: 2 },
    { type: 'thing.updated', thingName: 'lamp-2' },
    { type: 'thing-group.deleted', groupName: 'sensors' },
  ] as const
  for (const e of yes) assert.ok(isPolicyChange(e) && affectsSession(e, deps), e.type)
  for (const e of no) assert.ok(!affectsSession(e, deps), e.type)
  assert.equal(isPolicyChange({ type: 'ca.registered', caCertificateId: 'x' }), false)
})
