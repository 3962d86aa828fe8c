import assert from 'node:assert/strict'
import test from 'node:test'
import { AppError } from '../core/index.ts'
import { MalformedPolicyError, parsePolicy, POLICY_RULES } from './index.ts'
import type { PolicyRule } from './index.ts'

const ok = (statement: unknown, version: string | null = '2012-10-17'): string =>
  JSON.stringify(version === null ? { Statement: statement } : { Version: version, Statement: statement })
const S = { Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:eu-west-1:1:topic/a' }

/** [source rule, policy text, expected rule id, expected JSON path]. */
const MALFORMED: [string, string, PolicyRule, string][] = [
  ['RFC 8259', '{"Version": "2012-10-17", "Statement": [', 'JSON_SYNTAX', 'Statement[0]'],
  ['RFC 8259', '', 'JSON_SYNTAX', '$'],
  ['RFC 8259', '{"Statement": [{"Effect": "Allow",}]}', 'JSON_SYNTAX', 'Statement[0]'],
  ['Access Analyzer: duplicate keys', '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Effect":"Deny","Action":"iot:*","Resource":"*"}}', 'JSON_DUPLICATE_KEY', 'Statement.Effect'],
  ['Access Analyzer: duplicate keys', ok([{ ...S, Condition: { StringEquals: { 'aws:username': 'a' } } }]).replace('"Condition":{', '"Condition":{"StringEquals":{"aws:username":"b"},'), 'JSON_DUPLICATE_KEY', 'Statement[0].Condition.StringEquals'],
  ['IAM UG grammar: the document is an object', '[]', 'DOCUMENT_NOT_OBJECT', '$'],
  ['IAM UG grammar: unknown top-level element', JSON.stringify({ Version: '2012-10-17', Statement: [S], Foo: 1 }), 'UNKNOWN_ELEMENT', 'Foo'],
  ['IAM UG elements_version', JSON.stringify({ Version: '2012-10-18', Statement: [S] }), 'VERSION_INVALID', 'Version'],
  ['IAM UG elements_version', JSON.stringify({ Version: 2012, Statement: [S] }), 'VERSION_INVALID', 'Version'],
  ['IAM UG elements_id', JSON.stringify({ Version: '2012-10-17', Id: 5, Statement: [S] }), 'ID_INVALID', 'Id'],
  ['IAM UG elements_statement', JSON.stringify({ Version: '2012-10-17' }), 'STATEMENT_MISSING', '$'],
  ['IAM UG elements_statement', ok([]), 'STATEMENT_INVALID', 'Statement'],
  ['IAM UG elements_statement', ok('x'), 'STATEMENT_INVALID', 'Statement'],
  ['IAM UG elements_statement', ok([S, 'x']), 'STATEMENT_INVALID', 'Statement[1]'],
  ['IAM UG grammar: unknown statement element', ok([{ ...S, Effects: 'Allow' }]), 'UNKNOWN_ELEMENT', 'Statement[0].Effects'],
  ['IoT policies are identity-based: no Principal', ok([{ ...S, Principal: '*' }]), 'PRINCIPAL_NOT_ALLOWED', 'Statement[0].Principal'],
  ['IoT policies are identity-based: no NotPrincipal', ok({ ...S, NotPrincipal: { AWS: '*' } }), 'PRINCIPAL_NOT_ALLOWED', 'Statement.NotPrincipal'],
  ['IAM UG elements_sid', ok([{ ...S, Sid: 1 }]), 'SID_INVALID', 'Statement[0].Sid'],
  ['IAM UG elements_sid: unique within a policy', ok([{ ...S, Sid: 'A' }, { ...S, Sid: 'A' }]), 'SID_DUPLICATE', 'Statement[1].Sid'],
  ['IAM UG elements_effect', ok([{ Action: 'iot:*', Resource: '*' }]), 'EFFECT_MISSING', 'Statement[0]'],
  ['IAM UG elements_effect: case-sensitive', ok([{ ...S, Effect: 'allow' }]), 'EFFECT_INVALID', 'Statement[0].Effect'],
  ['IAM UG elements_action', ok([{ Effect: 'Allow', Resource: '*' }]), 'ACTION_MISSING', 'Statement[0]'],
  ['IAM UG elements_notaction: not both', ok([{ ...S, NotAction: 'iot:Connect' }]), 'ACTION_CONFLICT', 'Statement[0]'],
  ['IAM UG elements_action: service:action', ok([{ ...S, Action: 'Publish' }]), 'ACTION_INVALID', 'Statement[0].Action'],
  ['IAM UG elements_action: no wildcard in the service', ok([{ ...S, Action: ['iot:Publish', 'io*:Publish'] }]), 'ACTION_INVALID', 'Statement[0].Action[1]'],
  ['IAM UG elements_action: no variables', ok([{ ...S, Action: 'iot:${aws:username}' }]), 'ACTION_INVALID', 'Statement[0].Action'],
  ['Access Analyzer: empty arrays', ok([{ ...S, Action: [] }]), 'VALUE_INVALID', 'Statement[0].Action'],
  ['IAM UG elements_action: strings only', ok([{ ...S, Action: ['iot:Publish', 3] }]), 'VALUE_INVALID', 'Statement[0].Action[1]'],
  ['IAM UG elements_resource', ok([{ Effect: 'Allow', Action: 'iot:*' }]), 'RESOURCE_MISSING', 'Statement[0]'],
  ['IAM UG elements_notresource: not both', ok([{ ...S, NotResource: '*' }]), 'RESOURCE_CONFLICT', 'Statement[0]'],
  ['IAM UG reference_identifiers: ARN format', ok([{ ...S, Resource: 'topic/a' }]), 'RESOURCE_INVALID', 'Statement[0].Resource'],
  ['IAM UG reference_identifiers: six parts', ok([{ ...S, Resource: 'arn:aws:iot:*' }]), 'RESOURCE_INVALID', 'Statement[0].Resource'],
  ['IAM UG reference_identifiers: a resource part', ok([{ ...S, Resource: ['*', 'arn:aws:iot:r:a:'] }]), 'RESOURCE_INVALID', 'Statement[0].Resource[1]'],
  ['IAM UG reference_identifiers: starts with arn', ok([{ ...S, Resource: 'urn:aws:iot:r:a:topic/x' }]), 'RESOURCE_INVALID', 'Statement[0].Resource'],
  ['IAM UG variables: only in the resource part of an ARN', ok([{ ...S, Resource: 'arn:aws:iot:${aws:username}:1:topic/x' }]), 'VARIABLE_NOT_ALLOWED', 'Statement[0].Resource'],
  ['IAM UG variables: syntax', ok([{ ...S, Resource: 'arn:aws:iot:r:1:topic/${aws:username' }]), 'VARIABLE_SYNTAX', 'Statement[0].Resource'],
  ['IAM UG variables: syntax', ok([{ ...S, Resource: 'arn:aws:iot:r:1:topic/${}' }]), 'VARIABLE_SYNTAX', 'Statement[0].Resource'],
  ['IAM UG variables: default in quotes', ok([{ ...S, Resource: 'arn:aws:iot:r:1:topic/${aws:username, anonymous}' }]), 'VARIABLE_SYNTAX', 'Statement[0].Resource'],
  ['IAM UG variables: default closed', ok([{ ...S, Resource: "arn:aws:iot:r:1:topic/${aws:username, 'x}" }]), 'VARIABLE_SYNTAX', 'Statement[0].Resource'],
  ['IAM UG elements_condition', ok([{ ...S, Condition: [] }]), 'CONDITION_INVALID', 'Statement[0].Condition'],
  ['IAM UG condition operators: known operators only', ok([{ ...S, Condition: { StringEqual: { 'aws:username': 'a' } } }]), 'CONDITION_OPERATOR_UNKNOWN', 'Statement[0].Condition.StringEqual'],
  ['IAM UG condition operators: names are case-sensitive', ok([{ ...S, Condition: { stringequals: { 'aws:username': 'a' } } }]), 'CONDITION_OPERATOR_UNKNOWN', 'Statement[0].Condition.stringequals'],
  ['IAM UG condition operators: qualifier spelling', ok([{ ...S, Condition: { 'ForAllValue:StringEquals': { 'aws:TagKeys': 'a' } } }]), 'CONDITION_OPERATOR_UNKNOWN', 'Statement[0].Condition.ForAllValue:StringEquals'],
  ['IAM UG condition operators: Null takes no IfExists', ok([{ ...S, Condition: { NullIfExists: { 'aws:username': 'true' } } }]), 'CONDITION_OPERATOR_MODIFIER', 'Statement[0].Condition.NullIfExists'],
  ['Access Analyzer: Null with a qualifier', ok([{ ...S, Condition: { 'ForAnyValue:Null': { 'aws:username': 'true' } } }]), 'CONDITION_OPERATOR_MODIFIER', 'Statement[0].Condition.ForAnyValue:Null'],
  ['IAM UG elements_condition: a block per operator', ok([{ ...S, Condition: { StringEquals: {} } }]), 'CONDITION_BLOCK_INVALID', 'Statement[0].Condition.StringEquals'],
  ['IAM UG elements_condition: a block per operator', ok([{ ...S, Condition: { StringEquals: 'x' } }]), 'CONDITION_BLOCK_INVALID', 'Statement[0].Condition.StringEquals'],
  ['IAM UG condition keys: prefix:name', ok([{ ...S, Condition: { StringEquals: { username: 'a' } } }]), 'CONDITION_KEY_INVALID', 'Statement[0].Condition.StringEquals.username'],
  ['Access Analyzer: empty arrays', ok([{ ...S, Condition: { StringEquals: { 'aws:username': [] } } }]), 'CONDITION_VALUE_INVALID', 'Statement[0].Condition.StringEquals.aws:username'],
  ['Access Analyzer: type mismatch (object)', ok([{ ...S, Condition: { StringEquals: { 'aws:username': { a: 1 } } } }]), 'CONDITION_VALUE_INVALID', 'Statement[0].Condition.StringEquals.aws:username'],
  ['Access Analyzer: type mismatch (null)', ok([{ ...S, Condition: { StringEquals: { 'aws:username': ['a', null] } } }]), 'CONDITION_VALUE_INVALID', 'Statement[0].Condition.StringEquals.aws:username[1]'],
  ['IAM UG condition operators: numeric', ok([{ ...S, Condition: { NumericLessThan: { 'aws:MultiFactorAuthAge': 'ten' } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.NumericLessThan.aws:MultiFactorAuthAge'],
  ['IAM UG condition operators: date', ok([{ ...S, Condition: { DateLessThan: { 'aws:CurrentTime': ['2026-01-01', 'soon'] } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.DateLessThan.aws:CurrentTime[1]'],
  ['IAM UG condition operators: Bool', ok([{ ...S, Condition: { Bool: { 'aws:SecureTransport': 'yes' } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.Bool.aws:SecureTransport'],
  ['IAM UG condition operators: Null', ok([{ ...S, Condition: { Null: { 'aws:username': 'maybe' } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.Null.aws:username'],
  ['IAM UG condition operators: BinaryEquals is base64', ok([{ ...S, Condition: { BinaryEquals: { 'aws:x': 'not base64' } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.BinaryEquals.aws:x'],
  ['IAM UG condition operators: IpAddress CIDR', ok([{ ...S, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/33' } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.IpAddress.aws:SourceIp'],
  ['IAM UG condition operators: IpAddress CIDR', ok([{ ...S, Condition: { NotIpAddress: { 'aws:SourceIp': '300.0.0.1' } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.NotIpAddress.aws:SourceIp'],
  ['IAM UG variables: not in numeric values', ok([{ ...S, Condition: { NumericEquals: { 'aws:MultiFactorAuthAge': '${aws:x}' } } }]), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.NumericEquals.aws:MultiFactorAuthAge'],
  ['IAM UG variables: Bool variables need 2012-10-17', ok([{ ...S, Condition: { Bool: { 'aws:SecureTransport': '${aws:x}' } } }], '2008-10-17'), 'CONDITION_VALUE_TYPE', 'Statement[0].Condition.Bool.aws:SecureTransport'],
  ['IAM UG condition keys: path for keys with brackets', ok([{ ...S, Condition: { StringEquals: { 'iot:Connection.Thing.Attributes[floor]': [] } } }]), 'CONDITION_VALUE_INVALID', 'Statement[0].Condition.StringEquals["iot:Connection.Thing.Attributes[floor]"]'],
]

for (const [source, text, rule, path] of MALFORMED) {
  test(`malformed (${source}): ${rule} at ${path}`, () => {
    assert.throws(() => parsePolicy(text), (err: unknown) => {
      assert.ok(err instanceof MalformedPolicyError)
      assert.ok(err instanceof AppError)
      assert.equal(err.code, 'ERR_POLICY_MALFORMED')
      assert.equal(err.details.rule, rule)
      assert.equal(err.details.path, path)
      assert.equal(err.path, path)
      assert.equal(err.message, POLICY_RULES[rule], 'the message is the fixed text of the rule')
      return true
    })
  })
}

test('IoT DG iot-policies: a document over 2048 characters excluding whitespace is rejected', () => {
  const big = JSON.stringify({ Version: '2012-10-17', Statement: [{ ...S, Resource: Array.from({ length: 60 }, (_, i) => `arn:aws:iot:eu-west-1:1:topic/${i}`) }] })
  assert.ok(big.length > 2048)
  assert.throws(() => parsePolicy(big), (e: unknown) => e instanceof MalformedPolicyError && e.rule === 'DOCUMENT_TOO_LARGE')
  assert.doesNotThrow(() => parsePolicy(big, { maxChars: 10_000 }))
})

test('IoT DG iot-policies: whitespace does not count towards the size limit', () => {
  const doc = JSON.stringify({ Version: '2012-10-17', Statement: [S] }, null, 2)
  const padded = doc.replace(/\n/g, `\n${'\t '.repeat(300)}`)
  assert.ok(padded.length > 2048)
  assert.doesNotThrow(() => parsePolicy(padded))
})

test('Statement may be a single object; its path has no index', () => {
  const d = parsePolicy(ok(S))
  assert.equal(d.statements.length, 1)
  assert.equal(d.statements[0].path, 'Statement')
})

test('Version absent means 2008-10-17 and variables stay text', () => {
  const d = parsePolicy(ok([{ ...S, Resource: 'arn:aws:iot:r:1:topic/${aws:username}' }], null))
  assert.equal(d.version, '2008-10-17')
  assert.equal(d.versionSpecified, false)
  assert.deepEqual(d.statements[0].resources[0].tail, [{ kind: 'text', text: 'topic/${aws:username}' }])
})

test('variables, defaults and escapes are parsed into template parts', () => {
  const d = parsePolicy(ok([{ ...S, Resource: "arn:aws:iot:r:1:topic/${ iot:ClientId }/${aws:username, 'it''s'}/${*}${?}${$}/x" }]))
  assert.deepEqual(d.statements[0].resources[0].tail, [
    { kind: 'text', text: 'topic/' },
    { kind: 'variable', key: 'iot:clientid', name: 'iot:ClientId', defaultValue: undefined },
    { kind: 'text', text: '/' },
    { kind: 'variable', key: 'aws:username', name: 'aws:username', defaultValue: "it's" },
    { kind: 'text', text: '/' },
    { kind: 'literal', text: '*?$' },
    { kind: 'text', text: '/x' },
  ])
})

test('condition keys are lower-cased, operators split into base, qualifier and IfExists', () => {
  const d = parsePolicy(ok([{ ...S, Condition: { 'ForAnyValue:StringLikeIfExists': { 'AWS:TagKeys': ['a*', 3, true] } } }]))
  const c = d.statements[0].conditions[0]
  assert.equal(c.base, 'StringLike')
  assert.equal(c.qualifier, 'ForAnyValue')
  assert.equal(c.ifExists, true)
  assert.equal(c.key, 'aws:tagkeys')
  assert.deepEqual(c.values.map(v => v.raw), ['a*', '3', 'true'])
  assert.equal(c.path, 'Statement[0].Condition.ForAnyValue:StringLikeIfExists.AWS:TagKeys')
})

test('a key named __proto__ is just a key (no prototype pollution)', () => {
  assert.throws(() => parsePolicy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*","__proto__":{"x":1}}]}'),
    (e: unknown) => e instanceof MalformedPolicyError && e.rule === 'UNKNOWN_ELEMENT')
  assert.equal(({} as Record<string, unknown>).x, undefined)
})

test('deeply nested JSON is refused before it can exhaust the stack', () => {
  const deep = `{"Version":"2012-10-17","Statement":${'['.repeat(5000)}${']'.repeat(5000)}}`
  assert.throws(() => parsePolicy(deep, { maxChars: 100_000 }), (e: unknown) => e instanceof MalformedPolicyError && e.rule === 'JSON_TOO_DEEP')
})

test('JSON string escapes are decoded', () => {
  const d = parsePolicy('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/\\u0061\\/b"}}')
  assert.equal(d.statements[0].resources[0].raw, 'arn:aws:iot:r:1:topic/a/b')
})
