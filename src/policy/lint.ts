/**
 * Static findings on one policy document: over-permission and the documented traps. In the spirit of Device
 * Defender's IOT_POLICY_OVERLY_PERMISSIVE_CHECK / IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK, Parliament and IAM
 * Access Analyzer policy checks. Ids are stable and never reused; severities follow Parliament's scale.
 */
import { IOT_ACTION_RESOURCE_TYPE, isKnownKey, parseDateMs, parseNumber } from './keys.ts'
import { compileGlobText, globMatch } from './glob.ts'
import { childPath } from './json.ts'
import { isNegatedOperator } from './parse.ts'
import type { ConditionClause, PolicyDocument, ResourcePattern, Statement, Template } from './types.ts'

/** Finding severity, most to least serious. */
export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info'

/** The lint rules, by stable id. */
export const LINT_RULES = {
  TWP001: { name: 'ALLOW_ALL_IOT_ACTIONS', severity: 'high', summary: 'Allow with Action "*" or "iot:*" grants every IoT action' },
  TWP002: { name: 'ALLOW_RESOURCE_STAR', severity: 'high', summary: 'Allow on Resource "*" reaches every device, topic and shadow' },
  TWP003: { name: 'WILDCARD_REACHES_OTHER_DEVICES', severity: 'high', summary: 'a wildcard in a client, topic, topic filter or thing resource comes before any per-device variable, so it reaches other devices\' namespaces' },
  TWP004: { name: 'SUBSCRIBE_DENY_BYPASSED_BY_WILDCARD', severity: 'high', summary: 'denying Subscribe on a topic filter does not stop a broader allowed filter from receiving those messages; deny (or exclude) iot:Receive on the topics' },
  TWP005: { name: 'SUBSCRIBE_WILDCARD_RECEIVE_UNRESTRICTED', severity: 'medium', summary: 'a wildcard Subscribe grant is not bounded by a restricted Receive grant' },
  TWP006: { name: 'CLIENT_ID_VARIABLE_WITHOUT_PINNED_CONNECT', severity: 'high', summary: '${iot:ClientId} is used while Connect does not pin the client id to the thing or certificate, so a device can choose a client id that reaches others' },
  TWP007: { name: 'ALLOW_WITH_NOT_ACTION', severity: 'high', summary: 'Allow with NotAction grants every action not listed, including future ones' },
  TWP008: { name: 'ALLOW_WITH_NOT_RESOURCE', severity: 'high', summary: 'Allow with NotResource grants every resource not listed' },
  TWP009: { name: 'CONDITION_NEVER_TRUE', severity: 'medium', summary: 'this statement\'s conditions can never all be true, so it never applies' },
  TWP010: { name: 'MQTT_WILDCARD_IN_DENY', severity: 'medium', summary: '+ and # are literal in policies, so a Deny naming them only denies that literal filter or topic' },
  TWP011: { name: 'MQTT_WILDCARD_LITERAL_IN_ALLOW', severity: 'low', summary: '+ and # are literal in policies: this Allow matches only the literal filter or topic' },
  TWP012: { name: 'FOR_ALL_VALUES_WITH_ALLOW', severity: 'medium', summary: 'ForAllValues is true when the key is missing, so this Allow also applies to requests without the key' },
  TWP013: { name: 'NO_VERSION', severity: 'low', summary: 'no Version: the 2008-10-17 language applies and policy variables are plain text' },
  TWP014: { name: 'VARIABLES_IGNORED_OLD_VERSION', severity: 'medium', summary: 'the policy uses ${…} but its version (2008-10-17) treats it as literal text' },
  TWP015: { name: 'UNKNOWN_CONDITION_KEY', severity: 'low', summary: 'unknown aws: or iot: condition key: it is never present in a request' },
  TWP016: { name: 'WILDCARD_WITHOUT_LIKE_OPERATOR', severity: 'low', summary: 'a * or ? in a StringEquals value is literal; use StringLike' },
  TWP017: { name: 'RESOURCE_TYPE_MISMATCH', severity: 'medium', summary: 'none of the resources is of the type these actions are checked against (e.g. Subscribe needs topicfilter/, Publish and Receive need topic/)' },
  TWP018: { name: 'MULTIVALUED_KEY_WITHOUT_SET_OPERATOR', severity: 'low', summary: 'a multi-valued key is used without ForAllValues or ForAnyValue' },
  TWP019: { name: 'NON_IOT_ACTION', severity: 'info', summary: 'an action of another service in an IoT policy has no effect' },
} as const
export type LintRuleId = keyof typeof LINT_RULES

/** One finding: the stable rule id and name, its severity, the JSON path it points at, and the rule's text. */
export interface Finding {
  readonly id: LintRuleId
  readonly rule: (typeof LINT_RULES)[LintRuleId]['name']
  readonly severity: Severity
  readonly path: string
  readonly message: string
}

const IDENTITY_KEYS = (key: string): boolean =>
  key === 'iot:connection.thing.thingname' || key === 'iot:clientid' || key.startsWith('iot:certificate.')

const DEVICE_TYPES = ['client/', 'topic/', 'topicfilter/', 'thing/']

function actionCovers (s: Statement, action: string): boolean {
  const any = s.actions.some(a => globMatch(compileGlobText(a.lower), action))
  return s.notAction ? !any : any
}

function tailText (t: Template): string {
  return t.map(p => p.kind === 'variable' ? `\${${p.name}}` : p.text).join('')
}

/** The resource type of an entry's tail (`topic`, `topicfilter`…) when it starts with a literal one. */
function resourceType (r: ResourcePattern): string | undefined {
  if (r.any) return undefined
  const first = r.tail[0]
  if (first === undefined || first.kind !== 'text') return undefined
  const m = /^([a-z]+)\//.exec(first.text)
  return m === null ? undefined : m[1]
}

/** True when a wildcard appears in the resource part before any per-device identity variable. */
function wildcardBeforeIdentity (r: ResourcePattern): boolean {
  if (r.any) return true
  for (const p of r.tail) {
    if (p.kind === 'variable') { if (IDENTITY_KEYS(p.key)) return false; continue }
    if (p.kind === 'text' && (p.text.includes('*') || p.text.includes('?'))) return true
  }
  return false
}

function hasWildcard (r: ResourcePattern): boolean {
  return r.any || r.tail.some(p => p.kind === 'text' && (p.text.includes('*') || p.text.includes('?')))
}

function usesVariable (doc: PolicyDocument, key: string): boolean {
  return doc.statements.some(s => s.resources.some(r => r.tail.some(p => p.kind === 'variable' && p.key === key)) ||
    s.conditions.some(c => c.key === key || c.values.some(v => v.template.some(p => p.kind === 'variable' && p.key === key))))
}

function connectPinned (doc: PolicyDocument): boolean {
  const connects = doc.statements.filter(s => s.effect === 'Allow' && actionCovers(s, 'iot:connect'))
  if (connects.length === 0) return true // Connect granted elsewhere: checked when that policy is linted
  return connects.every(s => !s.notResource && s.resources.every(r => {
    if (r.any || hasWildcard(r)) return false
    // client/${iot:ClientId} admits any client id; a thing or certificate variable pins it.
    return !r.tail.some(p => p.kind === 'variable' && p.key === 'iot:clientid')
  }))
}

function neverTrue (s: Statement): ConditionClause | undefined {
  const byKey = new Map<string, ConditionClause[]>()
  for (const c of s.conditions) {
    const list = byKey.get(c.key) ?? []
    list.push(c)
    byKey.set(c.key, list)
  }
  for (const [key, clauses] of byKey) {
    const nulls = clauses.filter(c => c.base === 'Null')
    const wantsAbsent = nulls.some(c => c.values.every(v => v.raw.toLowerCase() === 'true'))
    const wantsPresent = nulls.some(c => c.values.every(v => v.raw.toLowerCase() === 'false'))
    if (wantsAbsent && wantsPresent) return nulls[0]
    const positive = clauses.find(c => c.base !== 'Null' && !c.ifExists && c.qualifier !== 'ForAllValues' && !isNegatedOperator(c.base))
    if (wantsAbsent && positive !== undefined) return positive
    // A positive operator on a key that is never in a request (IAM UG: missing key → positive operators are false).
    if (positive !== undefined && (key.startsWith('aws:') || key.startsWith('iot:')) && !isKnownKey(key)) return positive
    for (const family of ['Numeric', 'Date'] as const) {
      let lo = -Infinity
      let hi = Infinity
      let culprit: ConditionClause | undefined
      for (const c of clauses) {
        if (!c.base.startsWith(family) || c.ifExists || c.qualifier !== undefined || c.values.length !== 1) continue
        const n = family === 'Numeric' ? parseNumber(c.values[0].raw) : parseDateMs(c.values[0].raw)
        const op = c.base.slice(family.length)
        if (op === 'LessThan') hi = Math.min(hi, n - Number.EPSILON * Math.max(1, Math.abs(n)))
        else if (op === 'LessThanEquals') hi = Math.min(hi, n)
        else if (op === 'GreaterThan') lo = Math.max(lo, n + Number.EPSILON * Math.max(1, Math.abs(n)))
        else if (op === 'GreaterThanEquals') lo = Math.max(lo, n)
        else if (op === 'Equals') { lo = Math.max(lo, n); hi = Math.min(hi, n) }
        else continue
        culprit = c
      }
      if (culprit !== undefined && lo > hi) return culprit
    }
    const eq = clauses.find(c => c.base === 'StringEquals' && !c.ifExists && c.qualifier === undefined)
    const ne = clauses.find(c => c.base === 'StringNotEquals' && c.qualifier === undefined)
    if (eq !== undefined && ne !== undefined && eq.values.every(v => ne.values.some(w => w.raw === v.raw))) return ne
  }
  return undefined
}

function hasVariableText (doc: PolicyDocument): boolean {
  return doc.statements.some(s => s.resources.some(r => r.raw.includes('${')) || s.conditions.some(c => c.values.some(v => v.raw.includes('${'))))
}

const MULTI_VALUED = (key: string): boolean => key.endsWith('.list') || key === 'iot:connectattributes' || key === 'iot:certificate.availablekeys'

/**
 * Lints a parsed policy. Findings are ordered by statement, then rule id. Pure; never throws for a valid document.
 */
export function lintPolicy (doc: PolicyDocument): Finding[] {
  const out: Finding[] = []
  const add = (id: LintRuleId, path: string): void => {
    const r = LINT_RULES[id]
    out.push({ id, rule: r.name, severity: r.severity, path, message: r.summary })
  }
  if (!doc.versionSpecified) add('TWP013', '$')
  if (doc.version === '2008-10-17' && hasVariableText(doc)) add('TWP014', 'Version')
  const clientIdUnpinned = usesVariable(doc, 'iot:clientid') && !connectPinned(doc)
  for (const s of doc.statements) {
    const allow = s.effect === 'Allow'
    const resPath = childPath(s.path, s.notResource ? 'NotResource' : 'Resource')
    const actPath = childPath(s.path, s.notAction ? 'NotAction' : 'Action')
    const entryPath = (i: number): string => s.resources.length === 1 ? resPath : childPath(resPath, i)
    if (allow && !s.notAction && s.actions.some(a => a.lower === '*' || a.lower === 'iot:*')) add('TWP001', actPath)
    if (allow && !s.notResource && s.resources.some(r => r.any)) add('TWP002', resPath)
    if (allow && !s.notResource) {
      s.resources.forEach((r, i) => {
        if (r.any) return
        const type = resourceType(r)
        const deviceScoped = type === undefined ? hasWildcard(r) : DEVICE_TYPES.includes(`${type}/`)
        if (deviceScoped && wildcardBeforeIdentity(r)) add('TWP003', entryPath(i))
      })
    }
    if (allow && s.notAction) add('TWP007', actPath)
    if (allow && s.notResource) add('TWP008', resPath)
    const never = neverTrue(s)
    if (never !== undefined) add('TWP009', never.path)
    s.resources.forEach((r, i) => {
      const type = resourceType(r)
      if ((type !== 'topic' && type !== 'topicfilter') || !/[+#]/.test(tailText(r.tail))) return
      add(allow ? 'TWP011' : 'TWP010', entryPath(i))
    })
    for (const c of s.conditions) {
      if (allow && c.qualifier === 'ForAllValues' && !c.ifExists) add('TWP012', c.path)
      if ((c.key.startsWith('aws:') || c.key.startsWith('iot:')) && !isKnownKey(c.key)) add('TWP015', c.path)
      if ((c.base === 'StringEquals' || c.base === 'StringNotEquals') && c.values.some(v => /[*?]/.test(v.template.map(p => p.kind === 'text' ? p.text : '').join('')))) add('TWP016', c.path)
      if (MULTI_VALUED(c.key) && c.qualifier === undefined && c.base !== 'Null') add('TWP018', c.path)
    }
    // Resource type mismatch: every listed action is a known data-plane action and no entry can be of its type.
    if (!s.notAction && !s.notResource) {
      const types = new Set(s.actions.map(a => a.lower.includes('*') || a.lower.includes('?') ? undefined : IOT_ACTION_RESOURCE_TYPE[a.lower]))
      if (!types.has(undefined) && !types.has('*')) {
        const fits = s.resources.some(r => r.any || resourceType(r) === undefined || types.has(resourceType(r) as never))
        if (!fits) add('TWP017', resPath)
      }
    }
    if (s.actions.some(a => a.lower !== '*' && !a.lower.startsWith('iot:') && !a.lower.startsWith('greengrass:'))) add('TWP019', actPath)
    if (clientIdUnpinned && s.resources.some(r => r.tail.some(p => p.kind === 'variable' && p.key === 'iot:clientid'))) add('TWP006', resPath)
  }
  lintSubscribeTraps(doc, add)
  return out
}

/** IoT DG `pub-sub-policy`: Allow topicfilter/a/* + Deny topicfilter/a/restricted/* still lets a/# receive a/restricted/… */
function lintSubscribeTraps (doc: PolicyDocument, add: (id: LintRuleId, path: string) => void): void {
  const receiveDenied = (topicTail: string): boolean => doc.statements.some(s =>
    actionCovers(s, 'iot:receive') && (
      (s.effect === 'Deny' && !s.notResource && s.resources.some(r => r.any || tailText(r.tail) === topicTail || globMatch(compileGlobText(tailText(r.tail)), topicTail))) ||
      (s.effect === 'Allow' && s.notResource && s.resources.some(r => tailText(r.tail) === topicTail))))
  const wildSubscribeAllowed = doc.statements.some(s => s.effect === 'Allow' && actionCovers(s, 'iot:subscribe') &&
    (s.notResource || s.resources.some(r => r.any || (resourceType(r) === 'topicfilter' && hasWildcard(r)))))
  for (const s of doc.statements) {
    if (s.effect !== 'Deny' || s.notResource || !actionCovers(s, 'iot:subscribe')) continue
    s.resources.forEach((r, i) => {
      if (resourceType(r) !== 'topicfilter' || !wildSubscribeAllowed) return
      const topicTail = `topic/${tailText(r.tail).slice('topicfilter/'.length)}`
      if (!receiveDenied(topicTail)) add('TWP004', s.resources.length === 1 ? childPath(s.path, 'Resource') : childPath(childPath(s.path, 'Resource'), i))
    })
  }
  // A wildcard Subscribe whose Receive grants are not bounded per device.
  for (const s of doc.statements) {
    if (s.effect !== 'Allow' || s.notResource || !actionCovers(s, 'iot:subscribe')) continue
    const wild = s.resources.findIndex(r => !r.any && resourceType(r) === 'topicfilter' && wildcardBeforeIdentity(r))
    if (wild < 0) continue
    const receiveUnbounded = doc.statements.some(t => t.effect === 'Allow' && actionCovers(t, 'iot:receive') &&
      (t.notResource || t.resources.some(r => r.any || (resourceType(r) === 'topic' && wildcardBeforeIdentity(r)))))
    if (receiveUnbounded) add('TWP005', s.resources.length === 1 ? childPath(s.path, 'Resource') : childPath(childPath(s.path, 'Resource'), wild))
  }
}
