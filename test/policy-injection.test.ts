/**
 * Injection tests: thing names, client ids, attributes and certificate fields containing MQTT or policy wildcards,
 * separators, `${`, `..` and Unicode lookalikes never gain access to another device's resources or to wildcard
 * subscriptions. Substituted values are literal (IAM UG `reference_policies_variables`) and hostile ones are refused
 * in Allow resources (keys.ts `isHostileValue`, extending IoT DG `cert-policy-variables`).
 */
import assert from 'node:assert/strict'
import test from 'node:test'
import { buildSessionVariables, compilePolicies, effectiveContext, evaluate, parsePolicy, ROLE_TEMPLATES, roleTemplates } from '../src/policy/index.ts'
import type { NamedPolicy } from '../src/policy/index.ts'

const ARN = { region: 'eu-west-1', accountId: '123456789012' }
const H = 'arn:aws:iot:eu-west-1:123456789012:'

const doc = (statements: unknown[]): NamedPolicy['document'] => parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: statements }))
const P = (name: string, statements: unknown[]): NamedPolicy => ({ name, versionId: '1', document: doc(statements) })

/** Policies that scope access with every kind of identity variable. */
const POLICIES: NamedPolicy[] = [
  ...Object.entries(roleTemplates(ARN)).map(([n, text]) => ({ name: n, versionId: '1', document: parsePolicy(text) })),
  ...Object.entries(ROLE_TEMPLATES).map(([n, text]) => ({ name: `portable-${n}`, versionId: '1', document: parsePolicy(text) })),
  P('client-id-topics', [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${H}client/\${iot:ClientId}` },
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: [`${H}topic/dt/\${iot:ClientId}/*`, `${H}topic/cmd/\${iot:ClientId}`] },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: [`${H}topicfilter/cmd/\${iot:ClientId}`, `${H}topicfilter/dt/\${iot:ClientId}/*`] },
    { Effect: 'Allow', Action: ['iot:GetThingShadow', 'iot:UpdateThingShadow'], Resource: `${H}thing/\${iot:ClientId}` },
  ]),
  P('thing-name-topics', [
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive', 'iot:RetainPublish'], Resource: `${H}topic/dt/\${iot:Connection.Thing.ThingName}/telemetry` },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${H}topicfilter/dt/\${iot:Connection.Thing.ThingName}/telemetry` },
  ]),
  P('certificate-topics', [
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Subscribe', 'iot:Receive'], Resource: [`${H}topic/cn/\${iot:Certificate.Subject.CommonName}`, `${H}topicfilter/cn/\${iot:Certificate.Subject.CommonName}`] },
  ]),
  P('condition-scoped', [
    { Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/dt/*`, Condition: { StringLike: { 'iot:ClientId': 'dev-*' } } },
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${H}client/*`, Condition: { StringEqualsIgnoreCase: { 'iot:ClientId': 'kiosk-1' } } },
  ]),
]

const VICTIMS = ['dev-1', 'dev-2', 'light-03-007', 'lock-01-001', 'kiosk-1']
const victimResources: string[] = []
for (const v of VICTIMS) {
  victimResources.push(
    `${H}client/${v}`, `${H}thing/${v}`, `${H}thing/${v}/named`,
    `${H}topic/dt/${v}/telemetry`, `${H}topic/cmd/${v}`, `${H}topicfilter/cmd/${v}`, `${H}topicfilter/dt/${v}/telemetry`,
    `${H}topic/cn/${v}`, `${H}topicfilter/cn/${v}`,
    `${H}topic/$aws/things/${v}/shadow/update`, `${H}topic/$aws/things/${v}/shadow/get/accepted`,
    `${H}topicfilter/$aws/things/${v}/shadow/update/accepted`,
    `${H}topic/building/1/floor/3/light/${v}/status`, `${H}topic/building/1/floor/3/light/${v}/cmd`,
    `${H}topicfilter/building/1/floor/3/light/${v}/cmd`, `${H}topic/building/1/floor/1/temperature/${v}`,
  )
}
// Wildcard subscriptions that would reach other devices if granted.
for (const f of ['#', '+', 'dt/#', 'dt/+', 'dt/+/telemetry', 'cmd/+', 'cmd/#', 'cn/+', 'cn/#', 'building/#', 'building/+/floor/+/light/+/cmd',
  'building/1/floor/3/light/+/cmd', '$aws/things/+/shadow/#', '$aws/things/#', 'dt/*', 'cmd/*']) {
  victimResources.push(`${H}topicfilter/${f}`)
}
victimResources.push(`${H}client/*`, `${H}thing/*`, `${H}topic/dt/*`, `${H}topic/cmd/*`, `${H}topic/#`)

const ACTIONS = ['iot:Connect', 'iot:Publish', 'iot:Subscribe', 'iot:Receive', 'iot:RetainPublish', 'iot:GetThingShadow', 'iot:UpdateThingShadow']

const HOSTILE = [
  '+', '#', '*', '?', '/', '+/+', '#/#', 'dev-1/..', '..', '../dev-1', 'dev-1/#', 'dev-*', 'dev-?', 'dev-1/+', 'a/b',
  '${iot:ClientId}', '${*}', '$aws', 'dev-1\u0000', 'dev-1\n', '',
  // Unicode lookalikes: fullwidth plus/number sign/asterisk/solidus, asterisk operator, hyphen variants, Cyrillic and
  // Kelvin-sign letters, a zero-width space, a combining mark.
  '\uFF0B', '\uFF03', '\uFF0A', '\u2217', 'dev\u20101', 'dev\u22121', 'd\u0435v-1', '\u212Aiosk-1', 'kiosk-1\u200B',
  'de\u0301v-1', 'dev-1\uFF0F..', '\uFF0Fdev-1',
]

function sessionFor (identity: string): ReturnType<typeof buildSessionVariables> {
  return buildSessionVariables({
    clientId: identity,
    thing: { name: identity, typeName: 'SmartLight', attributes: { building: identity, floor: identity } },
    exclusiveThing: true,
    certificate: { subject: { CommonName: [identity] } },
  })
}

/** Every victim resource × action, in both evaluators, for the given identity. */
function grantedVictims (identity: string): string[] {
  const session = sessionFor(identity)
  const az = compilePolicies(POLICIES, session, { arn: ARN })
  const ctx = effectiveContext(session)
  const out: string[] = []
  for (const resource of victimResources) {
    for (const action of ACTIONS) {
      const d = az.authorize(action, resource)
      const ref = evaluate(POLICIES, { action, resource, context: ctx })
      assert.equal(d.effect, ref.effect, `evaluators disagree for ${JSON.stringify(identity)} ${action} ${resource}`)
      if (d.allowed) out.push(`${action} ${resource}`)
    }
  }
  return out
}

test('a benign device reaches its own resources (the injection tests are not vacuous)', () => {
  const az = compilePolicies(POLICIES, sessionFor('dev-9'), { arn: ARN })
  for (const r of [`${H}topic/dt/dev-9/telemetry`, `${H}topic/cn/dev-9`, `${H}topic/cmd/dev-9`]) assert.ok(az.authorize('iot:Publish', r).allowed, r)
  assert.ok(az.authorize('iot:Subscribe', `${H}topicfilter/cmd/dev-9`).allowed)
  assert.ok(az.authorize('iot:Connect', `${H}client/dev-9`).allowed)
})

test('a benign device reaches no other device', () => {
  // condition-scoped grants publish on dt/* to client ids "dev-*": that is the policy's intent, not an injection.
  const granted = grantedVictims('dev-9').filter(g => !(g.startsWith('iot:Publish ') && g.includes(':topic/dt/')))
  assert.deepEqual(granted, [])
})

for (const identity of HOSTILE) {
  test(`identity ${JSON.stringify(identity)} as client id, thing name, attributes and certificate CN gains nothing`, () => {
    const granted = grantedVictims(identity)
    // Any client id starting "dev-" satisfies the `condition-scoped` policy's StringLike on iot:ClientId (a policy
    // that trusts the client id): that grant (publish on dt/*) is the policy's own, the same for every such id, and
    // it never includes a subscription.
    const expected = identity.startsWith('dev-') ? granted.filter(g => g.startsWith('iot:Publish ') && g.includes(':topic/dt/')) : []
    assert.deepEqual(granted, expected)
    assert.ok(!granted.some(g => g.includes('topicfilter/')), 'no wildcard or foreign subscription')
  })
}

test('a client id that is a pattern cannot satisfy an exact-match condition for another device', () => {
  const policies = [P('exact', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/*`, Condition: { StringEquals: { 'iot:ClientId': 'dev-1' } } }])]
  for (const id of ['dev-*', 'dev-?', '*', 'DEV-1', 'd\u0435v-1', 'dev-1 ']) {
    assert.equal(compilePolicies(policies, { 'iot:ClientId': id }).authorize('iot:Publish', `${H}topic/x`).effect, 'implicitDeny', id)
  }
})

test('StringEqualsIgnoreCase: the Kelvin sign and dotted capital I never fold onto ASCII letters', () => {
  const policies = [P('ci', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*', Condition: { StringEqualsIgnoreCase: { 'aws:username': ['kiosk', 'admin'] } } }])]
  const ask = (u: string): string => compilePolicies(policies, { 'aws:username': u }).authorize('iot:Publish', `${H}topic/x`).effect
  assert.equal(ask('KIOSK'), 'allowed')
  assert.equal(ask('\u212Aiosk'), 'implicitDeny')
  assert.equal(ask('adm\u0130n'), 'implicitDeny')
  for (const u of ['\u212Aiosk', 'adm\u0130n']) assert.equal(evaluate(policies, { action: 'iot:Publish', resource: `${H}topic/x`, context: { 'aws:username': u } }).effect, 'implicitDeny')
})

test('action names fold only ASCII: a dotless or dotted I never names iot:Publish', () => {
  const policies = [P('a', [{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }])]
  const az = compilePolicies(policies, {})
  for (const a of ['\u0130OT:Publish', 'iot:Publ\u0131sh', 'iot:Publish\u200B', 'iot\uFF1APublish']) {
    assert.equal(az.authorize(a, `${H}topic/x`).effect, 'implicitDeny', a)
    assert.equal(evaluate(policies, { action: a, resource: `${H}topic/x` }).effect, 'implicitDeny', a)
  }
})

test('substitution is one round: a value that looks like a variable is never expanded', () => {
  const policies = [P('d', [{ Effect: 'Deny', Action: 'iot:Publish', Resource: `${H}topic/x/\${iot:ClientId}` }, { Effect: 'Allow', Action: 'iot:Publish', Resource: `${H}topic/*` }])]
  const session = { 'iot:ClientId': '${aws:username}', 'aws:username': 'alice' }
  const az = compilePolicies(policies, session)
  assert.equal(az.authorize('iot:Publish', `${H}topic/x/alice`).effect, 'allowed')
  assert.equal(az.authorize('iot:Publish', `${H}topic/x/\${aws:username}`).effect, 'explicitDeny')
})

test('thing variables are not bound when the client id differs from the thing name (no exclusive association)', () => {
  const [role] = Object.values(roleTemplates(ARN))
  const policies = [{ name: 'r', versionId: '1', document: parsePolicy(role) }]
  const session = buildSessionVariables({ clientId: 'temp-01-002', thing: { name: 'temp-01-001', attributes: { building: '1', floor: '1' } } })
  const az = compilePolicies(policies, session, { arn: ARN })
  assert.equal(az.authorize('iot:Connect', `${H}client/temp-01-002`).effect, 'implicitDeny')
  assert.equal(az.authorize('iot:Connect', `${H}client/temp-01-001`).effect, 'implicitDeny')
  assert.equal(az.authorizeTopic('iot:Publish', 'building/1/floor/1/temperature/temp-01-001').effect, 'implicitDeny')
})
