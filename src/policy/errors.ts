import { AppError } from '../core/index.ts'

/**
 * Every way a policy document can be malformed, with the fixed message naming the rule. Ids are stable: API
 * clients and tests match on `details.rule`. Sources: IAM UG `reference_policies_grammar` and the element pages,
 * IoT DG `iot-policies` (size), Access Analyzer policy-check reference (duplicate keys, empty arrays, types).
 */
export const POLICY_RULES = {
  JSON_SYNTAX: 'policy document is not valid JSON',
  JSON_DUPLICATE_KEY: 'a JSON object repeats a key, which would silently drop one of the values',
  JSON_TOO_DEEP: 'policy document nests too deeply',
  DOCUMENT_TOO_LARGE: 'policy document exceeds the size limit (2048 characters excluding whitespace for IoT policies)',
  DOCUMENT_NOT_OBJECT: 'policy document must be a JSON object',
  UNKNOWN_ELEMENT: 'element is not part of the policy grammar',
  PRINCIPAL_NOT_ALLOWED: 'Principal and NotPrincipal are not allowed in an identity-based (IoT) policy',
  VERSION_INVALID: 'Version must be "2012-10-17" or "2008-10-17"',
  ID_INVALID: 'Id must be a string',
  STATEMENT_MISSING: 'Statement is required',
  STATEMENT_INVALID: 'Statement must be an object or a non-empty array of objects',
  SID_INVALID: 'Sid must be a string',
  SID_DUPLICATE: 'Sid values must be unique within a policy',
  EFFECT_MISSING: 'Effect is required',
  EFFECT_INVALID: 'Effect must be "Allow" or "Deny"',
  ACTION_MISSING: 'a statement needs Action or NotAction',
  ACTION_CONFLICT: 'a statement cannot have both Action and NotAction',
  ACTION_INVALID: 'an action must be "*" or "<service>:<action>", with wildcards only in the action name',
  RESOURCE_MISSING: 'a statement needs Resource or NotResource',
  RESOURCE_CONFLICT: 'a statement cannot have both Resource and NotResource',
  RESOURCE_INVALID: 'a resource must be "*" or an ARN of the form arn:partition:service:region:account:resource',
  VALUE_INVALID: 'value must be a string or a non-empty array of strings',
  VARIABLE_SYNTAX: "policy variable is malformed: expected ${key}, ${key, 'default'} or an escape ${*} ${?} ${$}",
  VARIABLE_NOT_ALLOWED: 'policy variables are allowed only in the resource part of an ARN and in String, Arn and Bool condition values',
  CONDITION_INVALID: 'Condition must be an object mapping operators to key/value blocks',
  CONDITION_OPERATOR_UNKNOWN: 'condition operator is not recognised',
  CONDITION_OPERATOR_MODIFIER: 'Null cannot take IfExists or a ForAllValues/ForAnyValue qualifier',
  CONDITION_BLOCK_INVALID: 'a condition operator must map at least one key to its values',
  CONDITION_KEY_INVALID: 'condition key must look like <prefix>:<name>',
  CONDITION_VALUE_INVALID: 'condition values must be strings, numbers or booleans, one or a non-empty array',
  CONDITION_VALUE_TYPE: 'condition value does not match the operator type (number, date, boolean, base64 or IP/CIDR)',
} as const
export type PolicyRule = keyof typeof POLICY_RULES

/**
 * A malformed policy (AWS MalformedPolicyException through the API). `message` is the rule's fixed text; the JSON
 * path of the offending element (e.g. `Statement[1].Condition.StringEquals`) and the rule id are in `details`.
 */
export class MalformedPolicyError extends AppError {
  readonly rule: PolicyRule
  readonly path: string
  constructor (rule: PolicyRule, path: string, extra: Record<string, string | number> = {}) {
    super('ERR_POLICY_MALFORMED', POLICY_RULES[rule], { ...extra, path, rule })
    this.rule = rule
    this.path = path
  }
}
