/**
 * The policy engine's data model. Everything here is plain, immutable data so the registry can store it, the
 * gateway can share it between sessions and tests can build it by hand.
 */

/** IAM UG `reference_policies_elements_version`: only these two language versions exist. */
export type PolicyVersion = '2012-10-17' | '2008-10-17'

/** IAM UG `reference_policies_elements_effect`: exactly `Allow` or `Deny`, case-sensitive. */
export type Effect = 'Allow' | 'Deny'

/**
 * One piece of a string that may contain policy variables (IAM UG `reference_policies_variables`).
 * - `text`: policy text. In a wildcard context (Resource, Action, `…Like` operators) `*` and `?` are wildcards.
 * - `literal`: the result of an escape `${*}`, `${?}` or `${$}`: always a literal character, never a wildcard.
 * - `variable`: `${key}` or `${key, 'default'}`. `key` is lower-cased (key names are case-insensitive); the
 *   substituted value is always matched literally.
 */
export type TemplatePart =
  | { readonly kind: 'text', readonly text: string }
  | { readonly kind: 'literal', readonly text: string }
  | { readonly kind: 'variable', readonly key: string, readonly name: string, readonly defaultValue: string | undefined }

/** A string split into text, escapes and variables. Under Version 2008-10-17 it is always one `text` part. */
export type Template = readonly TemplatePart[]

/** An entry of Action / NotAction. `lower` is ASCII-lower-cased: action names are case-insensitive. */
export interface ActionPattern {
  readonly raw: string
  readonly lower: string
}

/**
 * An entry of Resource / NotResource. `any` is the bare `"*"`. Otherwise the ARN is split at its first five
 * colons (IAM UG `reference_identifiers` ARN format): `head` holds `arn`, partition, service, region and account
 * (wildcards allowed, variables not), `tail` the resource part, where variables are allowed.
 */
export interface ResourcePattern {
  readonly raw: string
  readonly any: boolean
  readonly head: readonly string[]
  readonly tail: Template
}

/** Condition operators without qualifier or `IfExists` (IAM UG `reference_policies_elements_condition_operators`). */
export type BaseOperator =
  | 'StringEquals' | 'StringNotEquals' | 'StringEqualsIgnoreCase' | 'StringNotEqualsIgnoreCase'
  | 'StringLike' | 'StringNotLike'
  | 'NumericEquals' | 'NumericNotEquals' | 'NumericLessThan' | 'NumericLessThanEquals'
  | 'NumericGreaterThan' | 'NumericGreaterThanEquals'
  | 'DateEquals' | 'DateNotEquals' | 'DateLessThan' | 'DateLessThanEquals' | 'DateGreaterThan' | 'DateGreaterThanEquals'
  | 'Bool' | 'BinaryEquals' | 'IpAddress' | 'NotIpAddress'
  | 'ArnEquals' | 'ArnLike' | 'ArnNotEquals' | 'ArnNotLike'
  | 'Null'

/** IAM UG `reference_policies_condition-single-vs-multi-valued-context-keys`: the two set operators. */
export type SetQualifier = 'ForAllValues' | 'ForAnyValue'

/** One policy value of a condition. `template` carries variables only for String*, Arn* and Bool operators. */
export interface ConditionValue {
  readonly raw: string
  readonly template: Template
}

/** One `operator: { key: values }` pair. Several clauses in one statement are ANDed; values are ORed (NOR if negated). */
export interface ConditionClause {
  /** As written, e.g. `ForAnyValue:StringLikeIfExists`. */
  readonly operator: string
  readonly base: BaseOperator
  readonly qualifier: SetQualifier | undefined
  readonly ifExists: boolean
  /** Lower-cased context key (IAM UG: condition key names are not case-sensitive). */
  readonly key: string
  /** The key as written. */
  readonly keyName: string
  readonly values: readonly ConditionValue[]
  /** JSON path of the key, e.g. `Statement[1].Condition.StringEquals.aws:username`. */
  readonly path: string
}

/** A validated statement. `index` is its position in the Statement array (0 when Statement is an object). */
export interface Statement {
  readonly index: number
  readonly sid: string | undefined
  readonly effect: Effect
  readonly notAction: boolean
  readonly actions: readonly ActionPattern[]
  readonly notResource: boolean
  readonly resources: readonly ResourcePattern[]
  readonly conditions: readonly ConditionClause[]
  /** JSON path of the statement, e.g. `Statement[1]` or `Statement`. */
  readonly path: string
}

/** A parsed, validated policy document (see `parsePolicy`). */
export interface PolicyDocument {
  readonly version: PolicyVersion
  /** False when the document had no Version element (IAM then applies 2008-10-17). */
  readonly versionSpecified: boolean
  readonly id: string | undefined
  readonly statements: readonly Statement[]
}

/** A policy as attached to a principal: its name, the operative (default) version id, and the parsed document. */
export interface NamedPolicy {
  readonly name: string
  readonly versionId: string
  readonly document: PolicyDocument
}

/**
 * A request context value. Arrays are multi-valued keys (for `ForAllValues:` / `ForAnyValue:`); an empty array is
 * treated as a missing key. Dates are ISO 8601 strings or epoch seconds; booleans may be booleans or "true"/"false".
 */
export type ContextValue = string | number | boolean | readonly string[]

/**
 * Context keys to values, e.g. `{ 'iot:ClientId': 'dev-1', 'aws:SourceIp': '10.0.0.7' }`. Key names are matched
 * case-insensitively; a context must not hold two keys that differ only in case.
 */
export type ContextMap = Readonly<Record<string, ContextValue | undefined>>

/** What the reference interpreter is asked: an action, a resource ARN and the full request context. */
export interface AuthorizationRequest {
  readonly action: string
  readonly resource: string
  readonly context?: ContextMap
}

/** The three outcomes of IAM evaluation (IAM UG `reference_policies_evaluation-logic`). */
export type DecisionEffect = 'allowed' | 'explicitDeny' | 'implicitDeny'

/**
 * The answer to one authorization question: the outcome plus the statement that decided it (the first matching
 * Deny, else the first matching Allow, in policy then statement order), or no statement for an implicit deny.
 * Values returned by a `CompiledAuthorizer` are pre-built and frozen: comparing or storing them costs nothing.
 */
export interface Decision {
  readonly effect: DecisionEffect
  readonly allowed: boolean
  readonly policyName: string | undefined
  readonly policyVersion: string | undefined
  /** Index of the deciding statement in its policy's Statement array. */
  readonly statementIndex: number | undefined
  readonly sid: string | undefined
}

/** A statement that matched a request, for explanations and audit records. */
export interface StatementRef {
  readonly policyName: string
  readonly policyVersion: string
  readonly statementIndex: number
  readonly sid: string | undefined
  readonly effect: Effect
}

/** A decision with everything that explains it. */
export interface Evaluation extends Decision {
  /** Every matching Allow statement, in order. */
  readonly allows: readonly StatementRef[]
  /** Every matching Deny statement, in order. */
  readonly denies: readonly StatementRef[]
  /**
   * Context keys that statements applying to the action referred to (variables or condition keys) but that had
   * no value, as AWS TestAuthorization reports them in `missingContextValues`. Lower-cased, sorted, unique.
   */
  readonly missingContextValues: readonly string[]
}
