/**
 * Explanations in the shapes operators see: AWS TestAuthorization output (botocore iot `TestAuthorization`:
 * authResults[{authInfo, allowed, denied{implicitDeny, explicitDeny}, authDecision, missingContextValues}]) and
 * the fields an audit record of a decision carries.
 */
import type { ArnContext, Clock } from '../core/index.ts'
import { iotArn } from '../core/index.ts'
import { compilePolicies } from './compile.ts'
import { canonicalKey } from './keys.ts'
import type { ContextMap, Decision, Evaluation, NamedPolicy } from './types.ts'

/** TestAuthorization `actionType` values and the IoT action each checks. */
export const AUTH_ACTION_TYPES = {
  PUBLISH: 'iot:Publish',
  SUBSCRIBE: 'iot:Subscribe',
  RECEIVE: 'iot:Receive',
  CONNECT: 'iot:Connect',
} as const
export type AuthActionType = keyof typeof AUTH_ACTION_TYPES

/** One TestAuthorization `authInfos` entry. */
export interface AuthInfo {
  readonly actionType: AuthActionType
  readonly resources: readonly string[]
}

/** A policy as TestAuthorization names it. */
export interface PolicyRef {
  readonly policyName: string
  readonly policyArn: string
}

/** One TestAuthorization `authResults` entry. */
export interface AuthResult {
  readonly authInfo: AuthInfo
  readonly allowed: { readonly policies: readonly PolicyRef[] }
  readonly denied: {
    readonly implicitDeny: { readonly policies: readonly PolicyRef[] }
    readonly explicitDeny: { readonly policies: readonly PolicyRef[] }
  }
  readonly authDecision: 'ALLOWED' | 'EXPLICIT_DENY' | 'IMPLICIT_DENY'
  readonly missingContextValues: readonly string[]
}

/** Input of `testAuthorization`: the registry has already resolved the principal's effective policies. */
export interface TestAuthorizationInput {
  readonly authInfos: readonly AuthInfo[]
  /** Effective policies after `policyNamesToAdd` / `policyNamesToSkip`. */
  readonly policies: readonly NamedPolicy[]
  /** Session variables (see `buildSessionVariables`; TestAuthorization's `clientId` becomes `iot:ClientId`). */
  readonly session?: ContextMap
  /** Request-time keys. */
  readonly context?: ContextMap
  /** Region and account, for policy ARNs. */
  readonly arn: ArnContext
  readonly clock?: Clock
}

/**
 * AWS TestAuthorization semantics over our evaluator. For each authInfo every resource is evaluated with the same
 * compiled authorizer the gateway would use: the decision is EXPLICIT_DENY if any resource is explicitly denied,
 * ALLOWED if all are allowed, else IMPLICIT_DENY. `allowed` lists the policies with a matching Allow,
 * `explicitDeny` those with a matching Deny, and `implicitDeny` (for an implicit deny) the policies evaluated.
 */
export function testAuthorization (input: TestAuthorizationInput): { authResults: AuthResult[] } {
  const az = compilePolicies(input.policies, input.session ?? {}, { arn: input.arn, clock: input.clock })
  const ref = (name: string): PolicyRef => ({ policyName: name, policyArn: iotArn(input.arn, 'policy', name) })
  const authResults = input.authInfos.map((info): AuthResult => {
    const action = AUTH_ACTION_TYPES[info.actionType]
    const evals: Evaluation[] = info.resources.map(r => az.explain(action, r, input.context))
    const allowedNames = new Set<string>()
    const deniedNames = new Set<string>()
    const missing = new Set<string>()
    for (const e of evals) {
      for (const a of e.allows) allowedNames.add(a.policyName)
      for (const d of e.denies) deniedNames.add(d.policyName)
      for (const m of e.missingContextValues) missing.add(canonicalKey(m))
    }
    const explicit = evals.some(e => e.effect === 'explicitDeny')
    const allAllowed = evals.length > 0 && evals.every(e => e.allowed)
    const authDecision = explicit ? 'EXPLICIT_DENY' : allAllowed ? 'ALLOWED' : 'IMPLICIT_DENY'
    return {
      authInfo: { actionType: info.actionType, resources: [...info.resources] },
      allowed: { policies: [...allowedNames].map(ref) },
      denied: {
        implicitDeny: { policies: authDecision === 'IMPLICIT_DENY' ? input.policies.filter(p => !allowedNames.has(p.name)).map(p => ref(p.name)) : [] },
        explicitDeny: { policies: [...deniedNames].map(ref) },
      },
      authDecision,
      missingContextValues: [...missing].sort(),
    }
  })
  return { authResults }
}

/** The fields an audit event records for a decision (DESIGN.md §5: which statement decided, or that none matched). */
export interface DecisionRecord {
  readonly decision: 'allowed' | 'explicitDeny' | 'implicitDeny'
  readonly policyName?: string
  readonly policyVersion?: string
  /** The statement's Sid when it has one, else `#<index>`. */
  readonly statement?: string
}

/** Audit fields for a decision. Allocates: call it on denials and sampled allows, not per message. */
export function decisionRecord (d: Decision): DecisionRecord {
  if (d.policyName === undefined) return { decision: d.effect }
  return {
    decision: d.effect,
    policyName: d.policyName,
    policyVersion: d.policyVersion,
    statement: d.sid !== undefined && d.sid !== '' ? d.sid : `#${String(d.statementIndex)}`,
  }
}

/** One line for logs and the CLI, e.g. `explicitDeny by policy role-door-lock v1 statement DenyAdmin`. */
export function describeDecision (d: Decision): string {
  const r = decisionRecord(d)
  if (r.policyName === undefined) return `${d.effect}: no statement matched`
  return `${d.effect} by policy ${r.policyName} v${String(r.policyVersion)} statement ${String(r.statement)}`
}
