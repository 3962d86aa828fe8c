import { accountRootArn } from './arns.ts'
import type { IamStore } from './ports.ts'
import type { IamPolicy, IamRole } from './types.ts'

/**
 * Built-in identity policies and roles (issue #5: admin, operator, provisioner, auditor). They live in code, like
 * AWS managed policies (IAM UG `access_policies_managed-vs-inline`), so an upgrade can refine them; they cannot be
 * changed or deleted, only attached. Resources use `*` for the account so they hold in every deployment.
 */

/** Credential self-service on one's own user (IAM UG `reference_policies_examples_iam_mfa-selfmanage` and `…_iam_credentials_console`). */
const SELF_SERVICE = {
  Sid: 'ManageOwnCredentials',
  Effect: 'Allow',
  Action: [
    'iam:GetUser', 'iam:ChangePassword', 'iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:ListAccessKeys', 'iam:UpdateAccessKey',
    'iam:GetAccessKeyLastUsed', 'iam:ListMFADevices', 'iam:EnableMFADevice', 'iam:CreateVirtualMFADevice',
  ],
  // aws:username is absent for assumed-role sessions, so the statement never matches them (IAM UG
  // `reference_policies_variables`: "a policy variable with no value never matches").
  Resource: 'arn:aws:iam::*:user/${aws:username}',
}

const doc = (statements: readonly object[]): string => JSON.stringify({ Version: '2012-10-17', Statement: statements }, null, 2)

/** Names of the built-in policies. */
export const BuiltinPolicy = {
  Administrator: 'ThingwardAdministrator',
  Operator: 'ThingwardOperator',
  Provisioner: 'ThingwardProvisioner',
  Auditor: 'ThingwardAuditor',
} as const
export type BuiltinPolicy = (typeof BuiltinPolicy)[keyof typeof BuiltinPolicy]

const DOCUMENTS: Readonly<Record<BuiltinPolicy, string>> = {
  ThingwardAdministrator: doc([{ Sid: 'Everything', Effect: 'Allow', Action: '*', Resource: '*' }]),
  ThingwardOperator: doc([
    { Sid: 'Fleet', Effect: 'Allow', Action: ['iot:*', 'thingward:Provision', 'thingward:GetCaChain', 'thingward:LintPolicy', 'thingward:GetBlastRadius', 'thingward:ReadAudit', 'thingward:*PayloadSchema*'], Resource: '*' },
    SELF_SERVICE,
  ]),
  ThingwardProvisioner: doc([
    {
      Sid: 'ThingsAndCertificates',
      Effect: 'Allow',
      Action: [
        'iot:CreateThing', 'iot:DescribeThing', 'iot:ListThings', 'iot:UpdateThing', 'iot:DescribeThingType', 'iot:ListThingTypes',
        'iot:CreateKeysAndCertificate', 'iot:CreateCertificateFromCsr', 'iot:DescribeCertificate', 'iot:ListCertificates',
        'iot:UpdateCertificate', 'iot:AttachPolicy', 'iot:ListAttachedPolicies', 'iot:AttachThingPrincipal', 'iot:ListThingPrincipals',
        'iot:ListPrincipalThings', 'iot:DescribeEndpoint', 'thingward:Provision', 'thingward:GetCaChain',
      ],
      Resource: '*',
    },
    SELF_SERVICE,
  ]),
  ThingwardAuditor: doc([
    {
      Sid: 'ReadOnly',
      Effect: 'Allow',
      Action: [
        'iot:Describe*', 'iot:List*', 'iot:GetPolicy', 'iot:GetPolicyVersion', 'iot:GetEffectivePolicies', 'iot:TestAuthorization',
        'thingward:GetCaChain', 'thingward:LintPolicy', 'thingward:GetBlastRadius', 'thingward:ListPayloadSchemas', 'thingward:GetPayloadSchema',
        'iam:Get*', 'iam:List*',
      ],
      Resource: '*',
    },
    { Sid: 'Audit', Effect: 'Allow', Action: 'thingward:ReadAudit', Resource: '*' },
    SELF_SERVICE,
  ]),
}

const DESCRIPTIONS: Readonly<Record<BuiltinPolicy, string>> = {
  ThingwardAdministrator: 'Full access to every action, IAM included.',
  ThingwardOperator: 'Fleet operations (every iot: action, provisioning, audit reading); no IAM administration.',
  ThingwardProvisioner: 'Things and certificates only: create, describe, list, activate and attach.',
  ThingwardAuditor: 'Read-only access to the fleet and IAM, plus the audit log.',
}

/** Built-in roles and the policy each carries. */
export const BUILTIN_ROLES = { admin: BuiltinPolicy.Administrator, operator: BuiltinPolicy.Operator, provisioner: BuiltinPolicy.Provisioner, auditor: BuiltinPolicy.Auditor } as const
export type BuiltinRoleName = keyof typeof BUILTIN_ROLES

/** True for admin, operator, provisioner, auditor. */
export const isBuiltinRole = (name: string): name is BuiltinRoleName => Object.hasOwn(BUILTIN_ROLES, name)
/** True for the Thingward* built-in policy names. */
export const isBuiltinPolicy = (name: string): name is BuiltinPolicy => Object.hasOwn(DOCUMENTS, name)

/**
 * A built-in role's trust policy: the account. IAM UG `id_roles_compare-resource-policies` / `…_evaluation-logic`
 * cross-account section: when a trust policy names the account, a principal in it may assume the role only if its
 * own identity policy also allows `sts:AssumeRole` on the role, so an auditor cannot assume admin.
 */
export const accountTrustPolicy = (accountId: string): string => JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Sid: 'Account', Effect: 'Allow', Principal: { AWS: accountRootArn(accountId) }, Action: 'sts:AssumeRole' }],
})

const EPOCH = 0

/** The built-in policy record. */
export function builtinPolicy (name: BuiltinPolicy): IamPolicy {
  return { name, id: `ANPATHINGWARD${name.slice(9).toUpperCase().padEnd(7, 'X').slice(0, 7)}`, description: DESCRIPTIONS[name], document: DOCUMENTS[name], version: 1, createdMs: EPOCH, updatedMs: EPOCH, builtin: true }
}

/** The built-in role record. */
export function builtinRole (name: BuiltinRoleName, accountId: string): IamRole {
  return {
    name, id: `AROATHINGWARD${name.toUpperCase().padEnd(7, 'X').slice(0, 7)}`, description: DESCRIPTIONS[BUILTIN_ROLES[name]],
    trustPolicy: accountTrustPolicy(accountId), maxSessionSec: 3600, createdMs: EPOCH, tags: {}, builtin: true,
  }
}

/** A role by name: built-in (from code) or stored; undefined when neither. */
export async function findRole (s: IamStore, name: string, accountId: string): Promise<IamRole | undefined> {
  return isBuiltinRole(name) ? builtinRole(name, accountId) : s.getRole(name)
}

/** Every built-in policy name. */
export const BUILTIN_POLICY_NAMES: readonly BuiltinPolicy[] = Object.values(BuiltinPolicy)
/** Every built-in role name. */
export const BUILTIN_ROLE_NAMES: readonly BuiltinRoleName[] = Object.keys(BUILTIN_ROLES) as BuiltinRoleName[]
