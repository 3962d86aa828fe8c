/**
 * The policy engine (issue #3): parse and validate AWS IoT / IAM policy documents, evaluate them exactly as AWS
 * documents (reference interpreter), compile a principal's policies into a fast per-session decision function,
 * explain decisions (TestAuthorization shape, audit fields), lint policies and compute fleet blast radius.
 * Pure: imports only `src/core` and performs no I/O.
 */
export type {
  ActionPattern, AuthorizationRequest, BaseOperator, ConditionClause, ConditionValue, ContextMap, ContextValue,
  Decision, DecisionEffect, Effect, Evaluation, NamedPolicy, PolicyDocument, PolicyVersion, ResourcePattern,
  SetQualifier, Statement, StatementRef, Template, TemplatePart,
} from './types.ts'
export { MalformedPolicyError, POLICY_RULES } from './errors.ts'
export type { PolicyRule } from './errors.ts'
export { IOT_POLICY_MAX_CHARS, parsePolicy, parsePolicyValue } from './parse.ts'
export type { ParsePolicyOptions } from './parse.ts'
export { IOT_ACTION_RESOURCE_TYPE, IOT_ACTIONS, KNOWN_KEYS, isHostileValue } from './keys.ts'
export type { IotAction } from './keys.ts'
export { evaluate } from './reference.ts'
export { compilePolicies, IMPLICIT_DENY_DECISION } from './compile.ts'
export type { CompileOptions, CompiledAuthorizer } from './compile.ts'
export { buildSessionVariables, collectEffectivePolicies, effectiveContext } from './session.ts'
export type { AltNameField, CertificateFields, DnField, GroupPolicies, PrincipalPolicies, SessionInput, SessionThing } from './session.ts'
export { AUTH_ACTION_TYPES, decisionRecord, describeDecision, testAuthorization } from './explain.ts'
export type { AuthActionType, AuthInfo, AuthResult, DecisionRecord, PolicyRef, TestAuthorizationInput } from './explain.ts'
export { LINT_RULES, lintPolicy } from './lint.ts'
export type { Finding, LintRuleId, Severity } from './lint.ts'
export { computeBlastRadius, formatBlastRadiusReport, formatPercent, optimisticPolicies } from './blast-radius.ts'
export type { BlastRadiusReport, PrincipalBlastRadius, Share } from './blast-radius.ts'
export {
  operatorTemplate, ROLE_INFO, ROLE_TEMPLATES, ROLES, roleTemplates, SEED_ARN, seedFleet, SHARED_CREDENTIAL_POLICY,
} from './templates.ts'
export type { FleetPrincipal, FleetSnapshot, FleetThing, RoleName, SeedFleet, SeedFleetOptions } from './templates.ts'
export { affectsSession, isPolicyChange } from './events.ts'
export type { PolicyChange, PolicyDomainEvent, SessionDependencies } from './events.ts'
