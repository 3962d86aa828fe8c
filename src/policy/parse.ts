import { MalformedPolicyError } from './errors.ts'
import { childPath, parseJsonStrict } from './json.ts'
import type { JsonValue } from './json.ts'
import { decodeBase64, parseBool, parseDateMs, parseIpBlock, parseNumber } from './keys.ts'
import { parseTemplate } from './template.ts'
import type {
  ActionPattern, BaseOperator, ConditionClause, ConditionValue, Effect, PolicyDocument, PolicyVersion,
  ResourcePattern, SetQualifier, Statement,
} from './types.ts'

/** Options for `parsePolicy`. */
export interface ParsePolicyOptions {
  /**
   * Maximum document size in characters, not counting whitespace. Default 2048: the AWS IoT limit for a policy
   * document "excluding whitespace" (botocore iot `CreatePolicy` documentation). Use a larger value for operator
   * (IAM-style) policies.
   */
  readonly maxChars?: number
}

/** IoT DG `iot-policies` / botocore iot CreatePolicy: 2048 characters excluding whitespace. */
export const IOT_POLICY_MAX_CHARS = 2048

const BASE_OPERATORS: ReadonlySet<string> = new Set<BaseOperator>([
  'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike',
  'NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan',
  'NumericGreaterThanEquals', 'DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan',
  'DateGreaterThanEquals', 'Bool', 'BinaryEquals', 'IpAddress', 'NotIpAddress', 'ArnEquals', 'ArnLike', 'ArnNotEquals',
  'ArnNotLike', 'Null',
])

/** Operators whose values may hold policy variables (IAM UG `reference_policies_variables`, "Where you can use policy variables"). */
export function operatorTakesVariables (base: BaseOperator): boolean {
  return base.startsWith('String') || base.startsWith('Arn') || base === 'Bool'
}

/** Negated operators evaluate their values as a NOR (IAM UG `reference_policies_condition-logic-multiple-context-keys-or-values`). */
export function isNegatedOperator (base: BaseOperator): boolean {
  return base === 'StringNotEquals' || base === 'StringNotEqualsIgnoreCase' || base === 'StringNotLike' ||
    base === 'NumericNotEquals' || base === 'DateNotEquals' || base === 'NotIpAddress' || base === 'ArnNotEquals' ||
    base === 'ArnNotLike'
}

/** Splits `ForAnyValue:StringLikeIfExists` into its parts; undefined for an unknown operator. */
export function splitOperator (op: string): { base: BaseOperator, qualifier: SetQualifier | undefined, ifExists: boolean } | undefined {
  let rest = op
  let qualifier: SetQualifier | undefined
  if (rest.startsWith('ForAllValues:')) { qualifier = 'ForAllValues'; rest = rest.slice(13) } else if (rest.startsWith('ForAnyValue:')) { qualifier = 'ForAnyValue'; rest = rest.slice(12) }
  let ifExists = false
  if (rest.endsWith('IfExists')) { ifExists = true; rest = rest.slice(0, -8) }
  if (!BASE_OPERATORS.has(rest)) return undefined
  return { base: rest as BaseOperator, qualifier, ifExists }
}

type JsonObject = { [key: string]: JsonValue }
const isObject = (v: JsonValue | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

function countNonWhitespace (text: string): number {
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) n++
  }
  return n
}

function stringList (v: JsonValue, path: string): string[] {
  if (typeof v === 'string') return [v]
  if (!Array.isArray(v) || v.length === 0) throw new MalformedPolicyError('VALUE_INVALID', path)
  return v.map((x, i) => {
    if (typeof x !== 'string') throw new MalformedPolicyError('VALUE_INVALID', childPath(path, i))
    return x
  })
}

const ACTION_RE = /^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$/

function parseAction (raw: string, path: string): ActionPattern {
  if (raw !== '*' && !ACTION_RE.test(raw)) throw new MalformedPolicyError('ACTION_INVALID', path)
  let lower = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    lower += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : raw[i]
  }
  return { raw, lower }
}

function parseResource (raw: string, variables: boolean, path: string): ResourcePattern {
  if (raw === '*') return { raw, any: true, head: [], tail: [{ kind: 'text', text: '*' }] }
  // IAM UG `reference_identifiers`: arn:partition:service:region:account-id:resource — split at the first five
  // colons; the resource part may contain more colons.
  const head: string[] = []
  let pos = 0
  for (let k = 0; k < 5; k++) {
    const c = raw.indexOf(':', pos)
    if (c < 0) throw new MalformedPolicyError('RESOURCE_INVALID', path)
    head.push(raw.slice(pos, c))
    pos = c + 1
  }
  const tailRaw = raw.slice(pos)
  if (head[0] !== 'arn' || head[1].length === 0 || head[2].length === 0 || tailRaw.length === 0) {
    throw new MalformedPolicyError('RESOURCE_INVALID', path)
  }
  // IAM UG `reference_policies_variables`: variables only in the resource part of the ARN.
  if (variables && head.some(h => h.includes('${'))) throw new MalformedPolicyError('VARIABLE_NOT_ALLOWED', path)
  return { raw, any: false, head, tail: parseTemplate(tailRaw, variables, path) }
}

function conditionScalar (v: JsonValue, path: string): string {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  throw new MalformedPolicyError('CONDITION_VALUE_INVALID', path)
}

function checkValueType (base: BaseOperator, raw: string, takesVars: boolean, path: string): void {
  let ok = true
  if (base.startsWith('Numeric')) ok = !Number.isNaN(parseNumber(raw))
  else if (base.startsWith('Date')) ok = !Number.isNaN(parseDateMs(raw))
  else if (base === 'Null') ok = parseBool(raw) !== undefined
  else if (base === 'Bool') ok = parseBool(raw) !== undefined || (takesVars && raw.includes('${'))
  else if (base === 'BinaryEquals') ok = decodeBase64(raw) !== undefined
  else if (base === 'IpAddress' || base === 'NotIpAddress') ok = parseIpBlock(raw) !== undefined
  if (!ok) throw new MalformedPolicyError('CONDITION_VALUE_TYPE', path)
}

const KEY_RE = /^[A-Za-z0-9-]+:\S+$/

function parseCondition (v: JsonValue, variables: boolean, path: string): ConditionClause[] {
  if (!isObject(v)) throw new MalformedPolicyError('CONDITION_INVALID', path)
  const out: ConditionClause[] = []
  for (const operator of Object.keys(v)) {
    const opPath = childPath(path, operator)
    const split = splitOperator(operator)
    if (split === undefined) throw new MalformedPolicyError('CONDITION_OPERATOR_UNKNOWN', opPath)
    if (split.base === 'Null' && (split.ifExists || split.qualifier !== undefined)) {
      throw new MalformedPolicyError('CONDITION_OPERATOR_MODIFIER', opPath)
    }
    const block = v[operator]
    if (!isObject(block) || Object.keys(block).length === 0) throw new MalformedPolicyError('CONDITION_BLOCK_INVALID', opPath)
    for (const keyName of Object.keys(block)) {
      const keyPath = childPath(opPath, keyName)
      if (!KEY_RE.test(keyName)) throw new MalformedPolicyError('CONDITION_KEY_INVALID', keyPath)
      const rawVal = block[keyName]
      let raws: string[]
      if (Array.isArray(rawVal)) {
        if (rawVal.length === 0) throw new MalformedPolicyError('CONDITION_VALUE_INVALID', keyPath)
        raws = rawVal.map((x, i) => conditionScalar(x, childPath(keyPath, i)))
      } else {
        raws = [conditionScalar(rawVal, keyPath)]
      }
      const takesVars = variables && operatorTakesVariables(split.base)
      const values: ConditionValue[] = raws.map((raw, i) => {
        const vp = raws.length === 1 && !Array.isArray(rawVal) ? keyPath : childPath(keyPath, i)
        checkValueType(split.base, raw, takesVars, vp)
        return { raw, template: parseTemplate(raw, takesVars, vp) }
      })
      out.push({
        operator,
        base: split.base,
        qualifier: split.qualifier,
        ifExists: split.ifExists,
        key: keyName.toLowerCase(),
        keyName,
        values,
        path: keyPath,
      })
    }
  }
  return out
}

const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition'])

function parseStatement (v: JsonValue, index: number, variables: boolean, path: string): Statement {
  if (!isObject(v)) throw new MalformedPolicyError('STATEMENT_INVALID', path)
  for (const k of Object.keys(v)) {
    if (k === 'Principal' || k === 'NotPrincipal') throw new MalformedPolicyError('PRINCIPAL_NOT_ALLOWED', childPath(path, k))
    if (!STATEMENT_KEYS.has(k)) throw new MalformedPolicyError('UNKNOWN_ELEMENT', childPath(path, k))
  }
  let sid: string | undefined
  if (v.Sid !== undefined) {
    if (typeof v.Sid !== 'string') throw new MalformedPolicyError('SID_INVALID', childPath(path, 'Sid'))
    sid = v.Sid
  }
  if (v.Effect === undefined) throw new MalformedPolicyError('EFFECT_MISSING', path)
  if (v.Effect !== 'Allow' && v.Effect !== 'Deny') throw new MalformedPolicyError('EFFECT_INVALID', childPath(path, 'Effect'))
  const effect: Effect = v.Effect
  if (v.Action !== undefined && v.NotAction !== undefined) throw new MalformedPolicyError('ACTION_CONFLICT', path)
  if (v.Action === undefined && v.NotAction === undefined) throw new MalformedPolicyError('ACTION_MISSING', path)
  const notAction = v.NotAction !== undefined
  const actionKey = notAction ? 'NotAction' : 'Action'
  const actionPath = childPath(path, actionKey)
  const actionRaw = v[actionKey] as JsonValue
  const actions = stringList(actionRaw, actionPath)
    .map((a, i) => parseAction(a, Array.isArray(actionRaw) ? childPath(actionPath, i) : actionPath))
  if (v.Resource !== undefined && v.NotResource !== undefined) throw new MalformedPolicyError('RESOURCE_CONFLICT', path)
  if (v.Resource === undefined && v.NotResource === undefined) throw new MalformedPolicyError('RESOURCE_MISSING', path)
  const notResource = v.NotResource !== undefined
  const resKey = notResource ? 'NotResource' : 'Resource'
  const resPath = childPath(path, resKey)
  const resRaw = v[resKey] as JsonValue
  const resources = stringList(resRaw, resPath)
    .map((r, i) => parseResource(r, variables, Array.isArray(resRaw) ? childPath(resPath, i) : resPath))
  const conditions = v.Condition === undefined ? [] : parseCondition(v.Condition, variables, childPath(path, 'Condition'))
  return { index, sid, effect, notAction, actions, notResource, resources, conditions, path }
}

/**
 * Parses and validates a policy document (IAM UG `reference_policies_grammar`, AWS IoT policy rules).
 * - `Version` "2012-10-17" enables policy variables; "2008-10-17" (also the default when Version is absent)
 *   treats `${…}` as literal text.
 * - `Statement` is one object or a non-empty array; each has `Effect`, exactly one of Action/NotAction and of
 *   Resource/NotResource, optional `Sid` (unique) and `Condition`. `Principal` is rejected: IoT policies are
 *   identity-based.
 * - Duplicate JSON keys, unknown elements, unknown condition operators, values that do not fit their operator's
 *   type, and documents over the size limit are rejected.
 * @throws MalformedPolicyError (code ERR_POLICY_MALFORMED, AWS MalformedPolicyException) whose message names the
 *   rule and whose `details.path` is the JSON path, e.g. `Statement[1].Condition.StringEquals`.
 */
export function parsePolicy (text: string, options: ParsePolicyOptions = {}): PolicyDocument {
  const maxChars = options.maxChars ?? IOT_POLICY_MAX_CHARS
  if (countNonWhitespace(text) > maxChars) throw new MalformedPolicyError('DOCUMENT_TOO_LARGE', '$', { maxChars })
  return parsePolicyValue(parseJsonStrict(text))
}

/** Validates an already-decoded JSON value as a policy document; see `parsePolicy`. No size check. */
export function parsePolicyValue (root: JsonValue): PolicyDocument {
  if (!isObject(root)) throw new MalformedPolicyError('DOCUMENT_NOT_OBJECT', '$')
  for (const k of Object.keys(root)) {
    if (k !== 'Version' && k !== 'Id' && k !== 'Statement') throw new MalformedPolicyError('UNKNOWN_ELEMENT', childPath('$', k))
  }
  let version: PolicyVersion = '2008-10-17'
  const versionSpecified = root.Version !== undefined
  if (versionSpecified) {
    if (root.Version !== '2012-10-17' && root.Version !== '2008-10-17') throw new MalformedPolicyError('VERSION_INVALID', 'Version')
    version = root.Version
  }
  let id: string | undefined
  if (root.Id !== undefined) {
    if (typeof root.Id !== 'string') throw new MalformedPolicyError('ID_INVALID', 'Id')
    id = root.Id
  }
  const st = root.Statement
  if (st === undefined) throw new MalformedPolicyError('STATEMENT_MISSING', '$')
  const variables = version === '2012-10-17'
  let statements: Statement[]
  if (Array.isArray(st)) {
    if (st.length === 0) throw new MalformedPolicyError('STATEMENT_INVALID', 'Statement')
    statements = st.map((s, i) => parseStatement(s, i, variables, `Statement[${i}]`))
  } else if (isObject(st)) {
    statements = [parseStatement(st, 0, variables, 'Statement')]
  } else {
    throw new MalformedPolicyError('STATEMENT_INVALID', 'Statement')
  }
  // IAM UG `reference_policies_elements_sid`: "the Sid value must be unique within a JSON policy".
  const sids = new Set<string>()
  for (const s of statements) {
    if (s.sid === undefined || s.sid === '') continue
    if (sids.has(s.sid)) throw new MalformedPolicyError('SID_DUPLICATE', childPath(s.path, 'Sid'))
    sids.add(s.sid)
  }
  return { version, versionSpecified, id, statements }
}
