import { AppError, isRecord } from '../core/index.ts'
import { compilePolicies, parsePolicy } from '../policy/index.ts'
import type { ContextMap, NamedPolicy, PolicyDocument } from '../policy/index.ts'
import { accountRootArn } from './arns.ts'
import { IAM_POLICY_MAX_CHARS } from './authorizer.ts'

/**
 * Role trust policies (IAM UG `reference_policies_elements_principal`). A trust policy is a policy whose
 * statements name a `Principal`. The policy engine parses identity policies, which have none, so each statement's
 * `Principal` is split off here and the rest (Effect, Action, Condition) goes through the engine unchanged.
 */
export interface TrustPolicy {
  readonly statements: ReadonlyArray<{ readonly principals: readonly string[], readonly policy: PolicyDocument }>
}

/** AWS `Principal` forms we accept: `"*"`, `{ "AWS": ARN | "*" | [ARN…] }`. */
function principalsOf (v: unknown, path: string): string[] {
  if (v === '*') return ['*']
  if (!isRecord(v) || Object.keys(v).some(k => k !== 'AWS')) throw new AppError('ERR_POLICY_MALFORMED', 'a trust policy Principal must be "*" or {"AWS": ARN or [ARN]}', { path })
  const aws = v.AWS
  const list = Array.isArray(aws) ? aws : [aws]
  if (list.length === 0 || list.some(x => typeof x !== 'string' || (x !== '*' && !/^arn:aws:(iam|sts)::[^:]+:(root|user\/.+|role\/.+|assumed-role\/.+)$/.test(x)))) {
    throw new AppError('ERR_POLICY_MALFORMED', 'a trust policy principal must be "*" or an IAM ARN (account root, user, role)', { path })
  }
  return list as string[]
}

/** Parses and validates a trust policy. Throws ERR_POLICY_MALFORMED (MalformedPolicyException). */
export function parseTrustPolicy (text: string): TrustPolicy {
  let root: unknown
  try { root = JSON.parse(text) } catch { throw new AppError('ERR_POLICY_MALFORMED', 'the trust policy is not valid JSON', { path: '$' }) }
  if (!isRecord(root)) throw new AppError('ERR_POLICY_MALFORMED', 'the trust policy must be a JSON object', { path: '$' })
  const raw = Array.isArray(root.Statement) ? root.Statement : [root.Statement]
  const statements = raw.map((st, i) => {
    const path = `Statement[${i}]`
    if (!isRecord(st) || st.Principal === undefined) throw new AppError('ERR_POLICY_MALFORMED', 'every trust policy statement needs a Principal', { path })
    const principals = principalsOf(st.Principal, `${path}.Principal`)
    const { Principal: _drop, ...rest } = st
    void _drop
    const actions = Array.isArray(rest.Action) ? rest.Action : [rest.Action]
    if (!actions.every(a => typeof a === 'string' && /^sts:(AssumeRole|\*)$/i.test(a))) {
      throw new AppError('ERR_POLICY_MALFORMED', 'trust policy statements allow or deny sts:AssumeRole only', { path: `${path}.Action` })
    }
    const policy = parsePolicy(JSON.stringify({ Version: root.Version ?? '2012-10-17', Statement: [{ ...rest, Resource: '*' }] }), { maxChars: IAM_POLICY_MAX_CHARS })
    return { principals, policy }
  })
  return { statements }
}

/** What the trust policy says about one caller. */
export interface TrustVerdict {
  readonly explicitDeny: boolean
  /** Allowed by a statement naming the caller itself (no identity permission needed). */
  readonly allowedDirectly: boolean
  /** Allowed by a statement naming the account or `*` (the caller's identity policy must also allow). */
  readonly allowedForAccount: boolean
}

/**
 * Evaluates a trust policy for a caller (`callerArns`: the user ARN, or the role ARN and session ARN of an assumed
 * role) with the request context (MFA, source IP, sts:ExternalId…). IAM UG
 * `reference_policies_evaluation-logic-cross-account` and `id_roles_compare-resource-policies`.
 */
export function evaluateTrust (trust: TrustPolicy, roleArn: string, callerArns: readonly string[], accountId: string, context: ContextMap): TrustVerdict {
  let explicitDeny = false
  let allowedDirectly = false
  let allowedForAccount = false
  for (const st of trust.statements) {
    const direct = st.principals.some(p => callerArns.includes(p))
    const account = st.principals.some(p => p === '*' || p === accountRootArn(accountId))
    if (!direct && !account) continue
    const named: NamedPolicy = { name: 'trust', versionId: '1', document: st.policy }
    const d = compilePolicies([named], {}).authorize('sts:AssumeRole', roleArn, context)
    if (d.effect === 'explicitDeny') explicitDeny = true
    if (d.allowed && direct) allowedDirectly = true
    if (d.allowed && account) allowedForAccount = true
  }
  return { explicitDeny, allowedDirectly, allowedForAccount }
}
